"""Recovery's bounds (issue 13): a `since` the log cannot hold is a 422 at once, and a recovery
that cannot succeed ends instead of retrying forever, with the API answering within a bound."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from domain.activity_contract import INVALID_RECOVERY_REQUEST, RecoveryRequest
from domain.ids import first_connection_id, recovered_id, recovery_workflow_id
from infra.tracing import Tracing
from services.reruns import RecoveryUnfinished, recover_endpoint
from tests.integration.helpers import (
    api_with,
    create_endpoint,
    delivery_outcome,
    list_ids,
    post_event,
    tracking_event,
)
from tests.receiver import OK, Reply, error
from tests.waiting import eventually
from workflows.recovery import RecoveryWorkflow


async def _recoveries_of(client: Client, endpoint_id: str) -> list[str]:
    query = f'WorkflowType = "RecoveryWorkflow" AND WorkflowId STARTS_WITH "recovery/{endpoint_id}/"'
    return [execution.id async for execution in client.list_workflows(query)]


def _recoveries_started(spans: InMemorySpanExporter) -> list[str]:
    """The recoveries an API started, as its own Temporal client recorded each start when it was
    made: unlike the search index, this cannot lag behind."""
    return [
        str((span.attributes or {})["temporalWorkflowID"])
        for span in spans.get_finished_spans()
        if span.name == "StartWorkflow:RecoveryWorkflow"
    ]


async def test_a_since_the_log_cannot_hold_is_422_at_once_and_starts_nothing(client, settings, receiver):
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    async with api_with(settings, tracing=Tracing(provider)) as api:
        await _check_sinces(api, client, receiver, spans)


async def _check_sinces(api, client: Client, receiver, spans: InMemorySpanExporter) -> None:
    endpoint = await create_endpoint(api, receiver.url())
    now = datetime.now(UTC)
    for since, reason in [
        ("0001-01-01T00:00:00+23:59", "between years 1 and 9999"),  # year 0 in UTC
        ("9999-12-31T23:59:59-23:59", "between years 1 and 9999"),  # year 10000 in UTC
        ((now + timedelta(hours=1)).isoformat(), "future"),
        ((now - timedelta(days=2)).isoformat(), "retention: at most 1 days ago"),  # the dev server keeps 1 day
        ("yesterday", "must be a date and time in ISO 8601"),
        (int(now.timestamp()), "must be a date and time in ISO 8601, not a number"),
    ]:
        started = time.monotonic()
        response = await api.post(f"/v1/endpoints/{endpoint['id']}/recover", json={"since": since})
        assert response.status_code == 422, (since, response.text)
        [problem] = response.json()["errors"]
        assert problem["field"] == "since" and reason in problem["message"], (since, problem)
        assert time.monotonic() - started < 2, since
    misspelt = {"since": now.isoformat(), "snice": now.isoformat()}
    response = await api.post(f"/v1/endpoints/{endpoint['id']}/recover", json=misspelt)
    assert response.status_code == 422 and [p["field"] for p in response.json()["errors"]] == ["body"]
    assert _recoveries_started(spans) == []

    within = await api.post(
        f"/v1/endpoints/{endpoint['id']}/recover", json={"since": (now - timedelta(hours=23)).isoformat()}
    )
    assert within.status_code == 200 and within.json() == {"found": 0, "started": 0}
    [valid] = _recoveries_started(spans)  # the valid one only
    assert valid.startswith(f"recovery/{endpoint['id']}/")
    # And Temporal holds that one only, once its index shows it.
    await eventually(
        lambda: _recoveries_of(client, endpoint["id"]), lambda ids: ids == [valid], what="the valid recovery listed"
    )


async def test_a_recovery_that_cannot_succeed_fails_once_instead_of_retrying_forever(client, settings, worker):
    """One started by an older API, or by hand, with issue 13's since: it retried for 25 minutes and more."""
    year_zero = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59)))
    request = RecoveryRequest(endpoint_id=f"ep_{uuid.uuid4().hex[:20]}", since=year_zero)
    handle = await client.start_workflow(
        RecoveryWorkflow.run,
        request,
        id=recovery_workflow_id(request.endpoint_id, "year-zero"),
        task_queue=settings.task_queue,
    )

    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), 20)
    history = [e async for e in handle.fetch_history_events()]

    activity_failure = failure.value.cause  # the workflow failed because its activity did
    assert isinstance(activity_failure, ActivityError)
    cause = activity_failure.cause
    assert isinstance(cause, ApplicationError) and cause.type == INVALID_RECOVERY_REQUEST and cause.non_retryable
    assert "since must be an instant between years 1 and 9999" in cause.message
    [run] = [e for e in history if e.HasField("activity_task_started_event_attributes")]
    assert run.activity_task_started_event_attributes.attempt == 1


async def test_the_api_waits_for_a_recovery_within_a_bound(client):
    """A recovery nobody runs (no worker on its queue) is answered after the wait, and goes on."""
    request = RecoveryRequest(endpoint_id=f"ep_{uuid.uuid4().hex[:20]}", since=datetime.now(UTC))
    started = time.monotonic()

    with pytest.raises(RecoveryUnfinished, match="is still running and goes on"):
        await recover_endpoint(client, f"nobody-{uuid.uuid4().hex[:8]}", request, wait_seconds=0.5)

    assert time.monotonic() - started < 3
    [still_running] = await eventually(lambda: _recoveries_of(client, request.endpoint_id), bool)
    await client.get_workflow_handle(still_running).terminate("test over")


async def test_a_disabled_endpoints_deliveries_are_re_run_only_once_it_is_enabled(api, client, receiver):
    url = receiver.url()
    endpoint = await create_endpoint(api, url)
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    assert (await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"disabled": True})).status_code == 200
    since = datetime.now(UTC).isoformat()
    accepted = await post_event(api, tracking_event())
    skipped = accepted["deliveries"][0]["id"]
    assert (await delivery_outcome(client, skipped)).result == "skipped"

    # Both would end skipped, and a recovery re-runs a delivery only once: refused until enabled.
    rerun = await api.post(f"/v1/deliveries/{skipped}/retry")
    recovery = await api.post(f"/v1/endpoints/{endpoint['id']}/recover", json={"since": since})
    for refused in (rerun, recovery):
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"].startswith("the endpoint is disabled: enable it")
    # A test still reaches it (the merchant checks the connection), and so does its re-run.
    tested = await api.post(f"/v1/endpoints/{endpoint['id']}/test")
    assert tested.status_code == 200, tested.text
    retested = await api.post(f"/v1/deliveries/{tested.json()['id']}/retry")
    assert retested.status_code == 202, retested.text
    assert (await delivery_outcome(client, retested.json()["id"])).result == "success"
    assert [r.headers["webhook-id"] for r in receiver.requests(url)][1:] == [tested.json()["id"]] * 2

    assert (await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"disabled": False})).status_code == 200
    recovered = await api.post(f"/v1/endpoints/{endpoint['id']}/recover", json={"since": since})
    assert recovered.json() == {"found": 1, "started": 1}
    assert (await delivery_outcome(client, recovered_id(skipped))).result == "success"


async def test_a_delivery_that_began_before_since_and_failed_after_it_is_recovered(api, client, receiver):
    """ "Failed since" is when a delivery ended: the 410 or the run of failures that disables an
    endpoint names a moment after the start of the delivery that caused it."""
    url = receiver.url()
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 1})
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    answer_now = asyncio.Event()
    receiver.script(url, error(500), error(500), Reply(status=500, answer_when=answer_now), error(500), OK)
    ended_before = (await post_event(api, tracking_event()))["deliveries"][0]["id"]
    assert (await delivery_outcome(client, ended_before)).result == "failed"
    ended_after = (await post_event(api, tracking_event()))["deliveries"][0]["id"]
    await receiver.wait_for(url, 4)  # its first POST is at the receiver: it has begun
    since = datetime.now(UTC)
    answer_now.set()
    assert (await delivery_outcome(client, ended_after)).result == "failed"
    await eventually(  # the search index, which recovery lists, lags a moment behind the run's end
        lambda: list_ids(api, endpoint_id=endpoint["id"], result="failed"),
        lambda listed: ended_after in listed,
        what="the delivery listed as failed",
    )

    recovered = await api.post(f"/v1/endpoints/{endpoint['id']}/recover", json={"since": since.isoformat()})
    assert recovered.json() == {"found": 1, "started": 1}
    assert (await delivery_outcome(client, recovered_id(ended_after))).result == "success"
    assert [r.headers["webhook-id"] for r in receiver.requests(url)][1:] == [ended_before] * 2 + [ended_after] * 3


async def test_deliveries_an_operator_stopped_are_recovered_as_the_log_lists_them_failed(api, client, receiver):
    """A delivery terminated or cancelled in the Web UI is `failed` in the log, so a recovery
    re-runs it: it records no result of its own."""
    url = receiver.url()
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 3})
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    since = datetime.now(UTC)
    answers = [asyncio.Event(), asyncio.Event()]
    receiver.script(url, *(Reply(status=500, answer_when=answer) for answer in answers), OK)
    stopped: list[str] = []
    for stop in ("terminate", "cancel"):
        delivery_id = (await post_event(api, tracking_event()))["deliveries"][0]["id"]
        await receiver.wait_for(url, 2 + len(stopped))  # its first POST is at the receiver
        handle = client.get_workflow_handle(delivery_id)
        await (handle.terminate("stopped by an operator") if stop == "terminate" else handle.cancel())
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        stopped.append(delivery_id)
    for answer in answers:
        answer.set()
    # The log lists them failed, once the search index has them (it lags a moment).
    await eventually(
        lambda: list_ids(api, endpoint_id=endpoint["id"], result="failed"),
        lambda listed: set(stopped) <= set(listed),
        what="the stopped deliveries listed as failed",
    )

    recovered = await api.post(f"/v1/endpoints/{endpoint['id']}/recover", json={"since": since.isoformat()})
    assert recovered.json() == {"found": 2, "started": 2}
    assert [(await delivery_outcome(client, recovered_id(d))).result for d in stopped] == ["success"] * 2
