"""Where a delivery's 202->receiver time goes, read from its history: one span per hop.

A first-attempt success runs: execution started (the API's start; the 202 follows it),
workflow task scheduled -> started (matching hands it to a poll of the worker) -> completed
(the worker ran it and scheduled `deliver_webhook`), activity scheduled -> started
(matching, or eager start by the worker that completed the workflow task) -> the receiver
got the POST (the activity's own work before the POST). The history's times are the
server's wall clock; the receiver's arrivals are CLOCK_MONOTONIC, converted with one
offset taken here (same machine, same kernel clocks).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.stats import summary_ms

# Hops in the order a delivery goes through them; their sum minus `start_to_202` is 202->receiver.
HOPS = ("start_to_202", "wft_dispatch", "wft_run", "activity_dispatch", "activity_to_post")


def monotonic_to_wall() -> float:
    """Add this to a CLOCK_MONOTONIC reading to get wall-clock seconds."""
    return time.time() - time.monotonic()


async def hop_spans(
    client: Client, accepted: Mapping[str, float], arrived: Mapping[str, float], offset: float
) -> dict[str, dict[str, float | None]]:
    """p50/p95/max of each hop (ms) over the deliveries `accepted` (id -> monotonic 202) that
    `arrived` (id -> monotonic first arrival); `offset` from `monotonic_to_wall`."""
    gate = asyncio.Semaphore(8)

    async def one(delivery_id: str) -> dict[str, float] | None:
        async with gate:
            history = await client.get_workflow_handle(delivery_id).fetch_history()
        first: dict[int, float] = {}
        for event in history.events:
            first.setdefault(event.event_type, event.event_time.ToDatetime().timestamp())
        needed = (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
        )
        if delivery_id not in arrived or any(e not in first for e in needed):
            return None
        started, wft_scheduled, wft_started, wft_done, act_scheduled, act_started = (first[e] for e in needed)
        return {
            "start_to_202": accepted[delivery_id] + offset - started,
            "wft_dispatch": wft_started - wft_scheduled,
            "wft_run": wft_done - wft_started,
            "activity_dispatch": act_started - act_scheduled,
            "activity_to_post": arrived[delivery_id] + offset - act_started,
        }

    spans = [s for s in await asyncio.gather(*(one(d) for d in accepted)) if s is not None]
    out: dict[str, Any] = {hop: _short(summary_ms([s[hop] for s in spans])) for hop in HOPS}
    out["deliveries"] = len(spans)
    return out


def _short(summary: dict[str, float | None]) -> dict[str, float | None]:
    return {k: summary[k] for k in ("p50", "p95", "max")}
