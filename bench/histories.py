"""What a delivery costs in history: events, bytes and Temporal Cloud Actions of a first-attempt
success and of a failure with N retries, from histories the run records as JSON.

Actions are counted by `domain.cloud_actions` (the rules of Temporal's pricing docs, see the
README) over the recorded JSON's `events`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import WorkflowExecutionStatus, WorkflowHistory

from bench.phases import POLL, Bench
from domain.cloud_actions import cloud_actions
from tests.contract import CONTRACT_ORDER

# The events of a delivery that did not succeed at once; a first-attempt success has none of them.
_RETRY_SIGNS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_TIMER_STARTED,
}


def _costs(histories: list[WorkflowHistory], into: Path | None, name: str) -> dict[str, Any]:
    """Events, bytes and Actions per history; the first one written to `into/name.json`."""
    documents = [json.loads(h.to_json()) for h in histories]
    events = [len(h.events) for h in histories]
    sizes = [History(events=h.events).ByteSize() for h in histories]
    actions = [sum(cloud_actions(d["events"]).values()) for d in documents]
    if into is not None and histories:
        into.mkdir(parents=True, exist_ok=True)
        (into / f"{name}.json").write_text(histories[0].to_json())
    return {
        "sampled": len(histories),
        "events_per_delivery": round(statistics.mean(events), 2) if events else None,
        "bytes_per_delivery": round(statistics.mean(sizes)) if sizes else None,
        "actions_per_delivery": round(statistics.mean(actions), 2) if actions else None,
        "event_types_of_one": [
            EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in (histories[0].events if histories else [])
        ],
        "recorded": f"{name}.json" if into is not None and histories else None,
    }


async def history_costs(bench: Bench, delivery_ids: list[str], into: Path | None, sample: int = 10) -> dict[str, Any]:
    """A sample of the pipeline's deliveries that succeeded at the first attempt (a completed run
    with no failed attempt and no retry timer: this holds for the activity and a local activity)."""
    histories = []
    for delivery_id in delivery_ids:
        history = await bench.client.get_workflow_handle(delivery_id).fetch_history()
        if any(e.event_type in _RETRY_SIGNS for e in history.events):
            continue
        if history.events[-1].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            continue
        histories.append(history)
        if len(histories) >= sample:
            break
    return _costs(histories, into, "first_attempt_success")


def error_event(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "event": "ORDER_ERROR",
        "order": CONTRACT_ORDER,
        "error": {"date": 1622671204, "message": "Address not found"},
    }


async def failure_costs(bench: Bench, into: Path | None, retries: int = 2, deliveries: int = 3) -> dict[str, Any]:
    """Deliveries to an endpoint that answers 500, with `retries` retries, on a worker whose
    backoff is one second, until each ended failed; their histories. The first one finds the
    endpoint healthy and tries its first POST inside its workflow task; once the registry
    counts its failure, `deliveries` more make every attempt in the retries' activity (the
    shape of an endpoint's failures after its first: domain.endpoints.starts_in_activity).
    The endpoint is deleted after, and the worker restarted with the run's own backoff."""
    stack = bench.stack
    await stack.restart_worker(WEBHOOKS_RETRY_INITIAL_INTERVAL="1", WEBHOOKS_RETRY_BACKOFF="1")
    body = {
        "url": f"{stack.receiver_url}/fail/costs",
        "events": ["ORDER_ERROR"],
        "retry": {"enabled": True, "max_retries": retries},
    }
    response = await bench.api.post("/v1/endpoints", json=body)
    response.raise_for_status()
    endpoint = response.json()["id"]
    prefix = f"{bench.run_id}-failure-"
    first = await _failed_deliveries(bench, [f"{prefix}first"], retries)
    await _until_counted(bench, endpoint)
    later = await _failed_deliveries(bench, [f"{prefix}{i:03d}" for i in range(deliveries)], retries)
    # Deleted, not disabled: a disabled endpoint still gets (skipped) deliveries of its events.
    (await bench.api.delete(f"/v1/endpoints/{endpoint}")).raise_for_status()
    await stack.restart_worker()
    return {
        "retries": retries,
        **_costs(later, into, f"failure_{retries}_retries"),
        "first_of_a_run": _costs(first, into, f"failure_{retries}_retries_first_of_a_run"),
    }


async def _failed_deliveries(bench: Bench, event_ids: list[str], retries: int) -> list[WorkflowHistory]:
    """Post these events at once; their deliveries' histories once every one has ended."""
    ids: list[str] = []
    for event_id in event_ids:
        posted = await bench.api.post("/v1/events", json=error_event(event_id))
        posted.raise_for_status()
        ids += [d["id"] for d in posted.json()["deliveries"]]
    deadline = time.monotonic() + 60 + 10 * retries
    for delivery_id in ids:
        handle = bench.client.get_workflow_handle(delivery_id)
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            bench.stack.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"failed deliveries still running after {retries} retries: {ids}")
            await asyncio.sleep(POLL)
    return [await bench.client.get_workflow_handle(d).fetch_history() for d in ids]


async def _until_counted(bench: Bench, endpoint_id: str) -> None:
    """Until the registry counts the endpoint's failed delivery, as ingest reads it."""
    deadline = time.monotonic() + 30
    while not (await bench.api.get(f"/v1/endpoints/{endpoint_id}")).json()["failed_deliveries_in_a_row"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the registry did not count {endpoint_id}'s failed delivery")
        await asyncio.sleep(POLL)
