"""A burst of deliveries meeting a worker at once (a backlog, or no worker for a while): each
first attempt POSTs once."""

from __future__ import annotations

import asyncio
import uuid

from pydantic import SecretStr
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from domain.ids import first_connection_id
from tests.integration.helpers import api_with, create_endpoint, delivery_outcome, post_event, tracking_event
from tests.receiver import OK
from tests.waiting import eventually
from worker import delivery_worker


async def _workflow_backlog(client: Client, task_queue: str) -> int:
    """The workflow tasks waiting in `task_queue` for a worker (Temporal's approximate count)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        report_stats=True,
    )
    return (await client.workflow_service.describe_task_queue(request)).stats.approximate_backlog_count


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
        # No worker: the burst's first workflow tasks wait in the queue, all met by the next worker.
        await eventually(lambda: _workflow_backlog(client, name), lambda n: n >= events, what="the burst queued")
        async with delivery_worker(client, own) as worker, worker:
            ids = [a["deliveries"][0]["id"] for a in accepted]
            async with asyncio.timeout(120):
                records = [await delivery_outcome(client, d) for d in ids]

    assert {(r.result, r.retry) for r in records} == {("success", 0)}
    assert len(receiver.requests(url)) == 2 + events  # the first connection, the warm-up, one each
