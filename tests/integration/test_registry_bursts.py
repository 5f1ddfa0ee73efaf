"""A burst of endpoint creates in one account: every one is answered, each refusal at
Temporal's limit on updates in flight says so and when to retry, and each create is answered in
the workflow task that accepted it (an answer left for a later task could, after a task timed
out under load, leave the registry unable to replay: every later task failed, and its account
could change nothing).

The burst reaches that limit only while more creates wait than the registry has answered, which
depends on the machine's speed: the test checks every refusal it meets, and may meet none."""

from __future__ import annotations

import asyncio

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from domain.delivery import DEFAULT_ACCOUNT
from domain.ids import registry_workflow_id
from tests.receiver import Receiver

BURST = 15


async def _create(api: httpx.AsyncClient, url: str) -> str:
    """Create an endpoint as a client should: retrying a 503 after its Retry-After."""
    while True:
        answer = await api.post("/v1/endpoints", json={"url": url, "events": ["ORDER_ERROR"]})
        if answer.status_code != 503:
            assert answer.status_code == 201, answer.text
            endpoint_id: str = answer.json()["id"]
            return endpoint_id
        assert answer.json() == {
            "detail": "Temporal is busy (a limit on requests at once was reached): retry in a second",
            "errors": [],
        }, answer.text
        assert answer.headers["retry-after"] == "1"
        await asyncio.sleep(float(answer.headers["retry-after"]))


async def test_a_burst_of_creates_is_answered_each_in_the_task_that_accepted_it(
    api: httpx.AsyncClient, client: Client, receiver: Receiver
) -> None:
    created = await asyncio.gather(*(_create(api, receiver.url()) for _ in range(BURST)))
    history = await client.get_workflow_handle(registry_workflow_id(DEFAULT_ACCOUNT)).fetch_history()

    listed = {e["id"] for e in (await api.get("/v1/endpoints")).json()}
    assert set(created) <= listed and len(set(created)) == BURST
    events = history.events
    assert not [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    completed = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]
    assert len(completed) >= BURST
    for done in completed:
        accepted_at = done.workflow_execution_update_completed_event_attributes.accepted_event_id
        between = [e.event_type for e in events if accepted_at < e.event_id < done.event_id]
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED not in between, (accepted_at, done.event_id)
