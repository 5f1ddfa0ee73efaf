"""Deliveries that waited in the task queue (a backlog, or no worker for a while): each
first attempt POSTs once, through the delivery activity."""

from __future__ import annotations

import asyncio
import uuid

from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType

from domain.ids import first_connection_id
from tests.integration.helpers import api_with, create_endpoint, delivery_outcome, post_event, tracking_event
from tests.receiver import OK
from worker import delivery_worker

QUEUED_FOR = 10.0  # seconds: past 80 % of a workflow task's 10 s timeout


async def test_deliveries_queued_behind_a_stopped_worker_each_post_once(client, settings, receiver):
    """Before, a first attempt ran as a local activity in its first workflow task however long
    that task had waited, and the SDK, counting the task's time from when it was scheduled,
    heartbeat it at once and could run the attempt again: in the bench, 5 % of 3,000 queued
    deliveries POSTed twice. A delivery whose first task waited makes its first attempt in the
    delivery activity instead (one POST, recorded by its heartbeat)."""
    name = f"queued-{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex
    own = settings.model_copy(
        update={"task_queue": name, "api_tokens": {name: SecretStr(token)}, "worker_cached_workflows": 4}
    )
    url = receiver.url(OK)
    events = 30
    async with api_with(own) as api:
        api.headers["authorization"] = f"Bearer {token}"
        async with delivery_worker(client, own) as worker, worker:
            endpoint = await create_endpoint(api, url)
            await delivery_outcome(client, first_connection_id(endpoint["id"]))
            warm = await post_event(api, tracking_event())  # the API reads the registry while a worker runs
            await delivery_outcome(client, warm["deliveries"][0]["id"])
        accepted = await asyncio.gather(*(post_event(api, tracking_event()) for _ in range(events)))
        await asyncio.sleep(QUEUED_FOR)  # no worker: every first workflow task waits
        async with delivery_worker(client, own) as worker, worker:
            ids = [a["deliveries"][0]["id"] for a in accepted]
            async with asyncio.timeout(120):
                records = [await delivery_outcome(client, d) for d in ids]

    assert {(r.result, r.retry) for r in records} == {("success", 0)}
    assert len(receiver.requests(url)) == 2 + events  # the first connection, the warm-up, one each
    history = await client.get_workflow_handle(ids[0]).fetch_history()
    kinds = [event.event_type for event in history.events]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED in kinds
    assert EventType.EVENT_TYPE_MARKER_RECORDED in kinds  # the version markers, not a local attempt
