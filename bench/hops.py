"""Where a delivery's 202->receiver time goes, read from its history: one span per hop.

A delivery runs: execution started (the API's start; the 202 follows it), workflow task
scheduled -> started (the server's transfer queue hands the task to matching, which hands it
to a poll of a worker) -> the receiver got the POST (the worker ran the task: the first
attempt as a local activity, or, for a limited or FIFO endpoint, the hand-over to
`deliver_webhook`, whose activity task then goes through matching too; those are counted
in `via_activity`). The history's times are the server's wall clock; the receiver's
arrivals are CLOCK_MONOTONIC, converted with one offset taken here (same machine, same
kernel clocks).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.stats import summary_ms

# `start_to_202` is how long after the start the 202 came; wft_dispatch + worker_to_post
# minus it is the delivery's 202->receiver.
HOPS = ("start_to_202", "wft_dispatch", "worker_to_post")

_NEEDED = (
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
)


def monotonic_to_wall() -> float:
    """Add this to a CLOCK_MONOTONIC reading to get wall-clock seconds."""
    return time.time() - time.monotonic()


async def hop_spans(
    client: Client, accepted: Mapping[str, float], arrived: Mapping[str, float], offset: float
) -> dict[str, Any]:
    """p50/p95/max of each hop (ms) over the deliveries `accepted` (id -> monotonic 202) that
    `arrived` (id -> monotonic first arrival); `offset` from `monotonic_to_wall`."""
    gate = asyncio.Semaphore(8)

    async def one(delivery_id: str) -> tuple[dict[str, float], bool] | None:
        if delivery_id not in arrived:
            return None
        async with gate:
            history = await client.get_workflow_handle(delivery_id).fetch_history()
        first: dict[int, float] = {}
        for event in history.events:
            first.setdefault(event.event_type, event.event_time.ToDatetime().timestamp())
        if any(e not in first for e in _NEEDED):
            return None
        started, wft_scheduled, wft_started = (first[e] for e in _NEEDED)
        spans = {
            "start_to_202": accepted[delivery_id] + offset - started,
            "wft_dispatch": wft_started - wft_scheduled,
            "worker_to_post": arrived[delivery_id] + offset - wft_started,
        }
        return spans, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED in first

    found = [s for s in await asyncio.gather(*(one(d) for d in accepted)) if s is not None]
    out: dict[str, Any] = {hop: _short(summary_ms([spans[hop] for spans, _ in found])) for hop in HOPS}
    out["deliveries"] = len(found)
    out["via_activity"] = sum(via for _, via in found)
    return out


def _short(summary: dict[str, float | None]) -> dict[str, float | None]:
    return {k: summary[k] for k in ("p50", "p95", "max")}
