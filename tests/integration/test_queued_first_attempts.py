"""A burst of deliveries meeting a worker at once (a backlog, or no worker for a while): each
first attempt POSTs once."""

from __future__ import annotations

import asyncio
import uuid

from pydantic import SecretStr

from domain.ids import first_connection_id
from tests.integration.helpers import api_with, create_endpoint, delivery_outcome, post_event, tracking_event
from tests.receiver import OK
from worker import delivery_worker

QUEUED_FOR = 1.0  # seconds without a worker: the burst is queued when one starts


async def test_deliveries_queued_behind_a_stopped_worker_each_post_once(client, settings, receiver):
    """A first attempt runs as a local activity inside its workflow's task, so its workflow must
    stay cached until the attempt is recorded, past the end of the task when the SDK heartbeats
    it. With as many task slots as cache entries, each new task could push out a workflow whose
    attempt was still running, cancelling it, and the task's retry POSTed again: 33 POSTs for
    32 in two of three runs here, 1,072 doubles of 20,000 in the bench's backlog. Workers keep
    half their cache free of running tasks now (worker.cache_limits)."""
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
