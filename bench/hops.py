"""Where a delivery's 202->receiver time goes, read from its history: one span per hop.

A delivery runs: execution started (the API's start; the 202 follows it), workflow task
scheduled -> started (the server's transfer queue hands the task to matching, which hands it
to a poll of a worker; one span, as the history cannot tell them apart) -> the receiver got
the POST (the worker ran the task: the first attempt as a local activity, or, for a limited
or FIFO endpoint, the hand-over to `deliver_webhook` in that same task, whose activity task
then goes through matching too; those hand-overs are counted in `via_activity`). The
history's times are the server's wall clock; the receiver's arrivals are CLOCK_MONOTONIC,
converted with one offset taken here (same machine, same kernel clocks).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench.stats import summary_ms

# The workflow task is scheduled with the start, so 202->receiver is
# wft_dispatch + worker_to_post - start_to_202.
HOPS = ("start_to_202", "wft_dispatch", "worker_to_post")

_NEEDED = (
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
)


def monotonic_to_wall() -> float:
    """Add this to a CLOCK_MONOTONIC reading to get wall-clock seconds."""
    return time.time() - time.monotonic()


def delivery_hops(
    events: Sequence[HistoryEvent], accepted_at: float, arrived_at: float
) -> tuple[dict[str, float], bool] | None:
    """One delivery's hops (seconds), from its history and its 202 and first arrival (wall
    clock), and whether its first POST was handed to the activity; None for a history that
    has not got that far."""
    first: dict[int, HistoryEvent] = {}
    for event in events:
        first.setdefault(event.event_type, event)
    if any(kind not in first for kind in _NEEDED):
        return None
    started, wft_scheduled, wft_started = (_seconds(first[kind]) for kind in _NEEDED[:3])
    wft_completed = first[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED].event_id
    hops = {
        "start_to_202": accepted_at - started,
        "wft_dispatch": wft_started - wft_scheduled,
        "worker_to_post": arrived_at - wft_started,
    }
    # Handed over: the first workflow task scheduled the activity. Retries after a failed
    # local first attempt schedule it too, but from a later task.
    scheduled = first.get(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    handed_over = (
        scheduled is not None
        and scheduled.activity_task_scheduled_event_attributes.workflow_task_completed_event_id == wft_completed
    )
    return hops, handed_over


def _seconds(event: HistoryEvent) -> float:
    # The event's time is UTC; ToDatetime() without a zone would be read as local time.
    return event.event_time.ToDatetime(tzinfo=UTC).timestamp()


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
        return delivery_hops(history.events, accepted[delivery_id] + offset, arrived[delivery_id] + offset)

    found = [s for s in await asyncio.gather(*(one(d) for d in accepted)) if s is not None]
    out: dict[str, Any] = {hop: _short(summary_ms([spans[hop] for spans, _ in found])) for hop in HOPS}
    out["deliveries"] = len(found)
    out["via_activity"] = sum(via for _, via in found)
    return out


def _short(summary: dict[str, float | None]) -> dict[str, float | None]:
    return {k: summary[k] for k in ("p50", "p95", "max")}
