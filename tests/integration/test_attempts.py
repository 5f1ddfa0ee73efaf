"""Every attempt explained (CONTRACT §8), and a failed delivery's run reads failed in the Web UI."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus

from tests.integration.helpers import create_endpoint, delivery_outcome, post_event, tracking_event
from tests.integration.stacks import post_events, ready_endpoint, stack
from tests.receiver import OK, error
from tests.waiting import eventually


async def test_every_attempt_is_kept_with_its_answer_timings_and_masked_headers(api, client, receiver):
    url = receiver.url(OK, error(503))
    endpoint = await create_endpoint(
        api, url, retry={"enabled": True, "max_retries": 2}, auth={"username": "shop", "password": "pw-Attempt-9"}
    )
    await delivery_outcome(client, f"delivery/first-connection/{endpoint['id']}")
    delivery_id = (await post_event(api, tracking_event()))["deliveries"][0]["id"]
    await delivery_outcome(client, delivery_id)

    detail = (await api.get(f"/v1/deliveries/{delivery_id}")).json()
    attempts = detail["attempts"]
    assert [a["number"] for a in attempts] == [1, 2, 3]
    assert [a["response"]["status_code"] for a in attempts] == [503, 503, 503]
    assert all(a["error"] == "HTTP response code is 503 (Service Unavailable), it must be 200" for a in attempts)
    assert all(
        a["timings"]["ttfb_ms"] is not None and a["timings"]["total_ms"] >= a["timings"]["ttfb_ms"] for a in attempts
    )
    assert all(a["request"]["headers"]["Authorization"] == "********" for a in attempts)
    assert [a["started_at"] for a in attempts] == sorted(a["started_at"] for a in attempts)
    assert (detail["result"], detail["retry"], detail["error"]) == ("failed", 2, attempts[-1]["error"])
    assert "pw-Attempt-9" not in str(detail)


async def test_a_retried_success_shows_each_answer(api, client, receiver):
    url = receiver.url(OK, error(500), OK)
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 3})
    await delivery_outcome(client, f"delivery/first-connection/{endpoint['id']}")
    delivery_id = (await post_event(api, tracking_event()))["deliveries"][0]["id"]
    await delivery_outcome(client, delivery_id)

    detail = (await api.get(f"/v1/deliveries/{delivery_id}")).json()
    assert [a["response"]["status_code"] for a in detail["attempts"]] == [500, 200]
    assert detail["attempts"][0]["error"] and detail["attempts"][1]["error"] is None
    assert (detail["result"], detail["retry"]) == ("success", 1)


async def test_a_pending_delivery_shows_its_attempts_so_far(client, settings, receiver):
    url = receiver.url(OK, error(500))
    async with stack(client, settings, retry_initial_interval=60.0) as api:
        await ready_endpoint(api, client, url)
        [delivery_id] = await post_events(api, 1)
        detail = await eventually(
            lambda: _detail(api, delivery_id), lambda d: len(d["attempts"]) == 1, what="the first attempt"
        )

    assert detail["result"] == "pending"
    assert detail["attempts"][0]["response"]["status_code"] == 500
    assert detail["next_attempt_at"] is not None


async def _detail(api: httpx.AsyncClient, delivery_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api.get(f"/v1/deliveries/{delivery_id}")).json()
    return found


async def test_a_failed_delivery_fails_its_run_and_the_log_still_reads_it(api, client, receiver):
    url = receiver.url(error(500))
    endpoint = await create_endpoint(api, url)
    first = f"delivery/first-connection/{endpoint['id']}"
    record = await delivery_outcome(client, first)

    description = await client.get_workflow_handle(first).describe()
    assert description.status == WorkflowExecutionStatus.FAILED  # what the Web UI's status filter reads
    failed_runs = [w.id async for w in client.list_workflows(f'WorkflowId = "{first}" AND ExecutionStatus = "Failed"')]
    assert failed_runs == [first]
    assert record.result == "failed" and record.error
    detail = (await api.get(f"/v1/deliveries/{first}")).json()
    assert (detail["result"], detail["error"]) == ("failed", record.error)
    rerun = await api.post(f"/v1/deliveries/{first}/retry")
    assert rerun.status_code == 202


async def test_retries_are_queued_behind_first_attempts(api, client, receiver):
    url = receiver.url(OK, error(500), OK)
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 2})
    await delivery_outcome(client, f"delivery/first-connection/{endpoint['id']}")
    delivery_id = (await post_event(api, tracking_event()))["deliveries"][0]["id"]
    record = await delivery_outcome(client, delivery_id)

    history = await client.get_workflow_handle(delivery_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    started = history.events[0].workflow_execution_started_event_attributes
    assert (record.result, record.retry) == ("success", 1)
    assert started.priority.priority_key == 2  # an event's delivery
    markers = [
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    # The first attempt runs inside the delivery's workflow task (dispatched at the delivery's
    # priority), as a local activity: no activity task. Its retries queue behind every first attempt.
    assert "core_local_activity" in markers
    assert [s.priority.priority_key for s in scheduled] == [3]
    assert scheduled[0].priority.fairness_key == "default"


async def test_a_first_attempt_success_runs_inside_the_workflow_task(api, client, receiver):
    """No activity task to schedule, dispatch and report: the POST's record is a local
    activity's marker in the delivery's one workflow task (README, "Temporal Cloud Actions")."""
    endpoint = await create_endpoint(api, receiver.url(OK))
    await delivery_outcome(client, f"delivery/first-connection/{endpoint['id']}")
    delivery_id = (await post_event(api, tracking_event()))["deliveries"][0]["id"]
    record = await delivery_outcome(client, delivery_id)

    history = await client.get_workflow_handle(delivery_id).fetch_history()
    kinds = [e.WhichOneof("attributes") for e in history.events]
    assert (record.result, record.retry, record.response and record.response.status_code) == ("success", 0, 200)
    assert len(history.events) <= 8, kinds
    assert kinds.count("workflow_task_completed_event_attributes") == 1
    assert "activity_task_scheduled_event_attributes" not in kinds
    detail = (await api.get(f"/v1/deliveries/{delivery_id}")).json()
    assert [a["response"]["status_code"] for a in detail["attempts"]] == [200]
