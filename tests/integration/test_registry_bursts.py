"""A burst of endpoint creates in one account: every one is answered, each refusal at
Temporal's limit on updates in flight says so and when to retry, and each create is answered in
the workflow task that accepted it (an answer left for a later task could, after a task timed
out under load, leave the registry unable to replay: every later task failed, and its account
could change nothing).

The API sends one registry 8 updates at a time (infra.temporal.UpdateSlots), below
Temporal's 10: a refusal comes only when a create waited 10 s for its turn, which depends on the
machine's speed. The test checks every refusal it meets, and may meet none."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid

import httpx
import pytest
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.delivery import DEFAULT_ACCOUNT
from domain.endpoints import EndpointSpec
from domain.events import EventType as WebhookEvent
from domain.ids import registry_workflow_id
from infra.temporal import update_with_start
from settings import Settings
from tests.integration.helpers import api_with
from tests.receiver import Receiver
from tests.waiting import eventually
from worker import delivery_worker
from workflows.endpoint_registry import EndpointRegistryWorkflow
from workflows.registry_messages import RegistryState

BURST = 15


BUSY = "Temporal is busy (a limit on requests at once was reached): retry in a second"


async def _create(api: httpx.AsyncClient, url: str, refused: list[str] | None = None) -> str:
    """Create an endpoint as a client should: retrying a 503 after its Retry-After. A 503 is
    Temporal's limit on updates in flight, unless `refused` is given: then any 503 is noted
    there and retried a second later."""
    while True:
        answer = await api.post("/v1/endpoints", json={"url": url, "events": ["ORDER_ERROR"]}, timeout=120)
        if answer.status_code != 503:
            assert answer.status_code == 201, answer.text
            endpoint_id: str = answer.json()["id"]
            return endpoint_id
        detail = answer.json()["detail"]
        if refused is None:
            assert answer.json() == {"detail": BUSY, "errors": []}, answer.text
        else:
            refused.append(detail)
        if detail == BUSY:
            assert answer.headers["retry-after"] == "1"
        await asyncio.sleep(1)


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


async def _noted(refused: list[str]) -> int:
    return len(refused)


async def test_creates_sent_while_no_worker_runs_are_refused_cleanly_and_all_made_once_one_starts(
    client: Client, settings: Settings, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """With no worker, the registry accepts no update: the API sends it 8 at a time, the rest
    wait 10 s and are refused as busy (or, were the server to drop one, unavailable). Once a
    worker runs, each create is made once, and nothing was logged as an error meanwhile."""
    name = f"no-worker-{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex
    own = settings.model_copy(update={"task_queue": name, "api_tokens": {name: SecretStr(token)}})
    refused: list[str] = []
    async with api_with(own) as api:
        api.headers["authorization"] = f"Bearer {token}"
        async with asyncio.TaskGroup() as creating:  # a failed create cancels the others
            creates = [creating.create_task(_create(api, receiver.url(), refused)) for _ in range(12)]
            await eventually(lambda: _noted(refused), lambda n: n >= 2, timeout=60, what="two creates refused")
            async with delivery_worker(client, own) as worker, worker, asyncio.timeout(90):
                created = await asyncio.gather(*creates)
                listed = {e["id"] for e in (await api.get("/v1/endpoints")).json()}
    assert len(set(created)) == 12 and set(created) == listed
    assert set(refused) <= {BUSY, "Temporal is unavailable, try again"}
    gc.collect()  # a failed operation lives in a cycle with its traceback: asyncio logs it when collected
    unread = [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert not unread, unread[0].getMessage()


async def test_a_failed_update_with_start_leaves_nothing_for_asyncio_to_log(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """When an update-with-start fails before the start, the SDK also sets the failure on the
    operation's workflow handle, which nothing awaits: asyncio logged it, traceback and all,
    as "Future exception was never retrieved" (a busy create did, in the API's log)."""
    account = f"fails-{uuid.uuid4().hex[:8]}"
    task_queue = f"nobody-{account}"  # no worker: the registry is started, never run
    workflow_id, state = registry_workflow_id(account), RegistryState(account=account)
    await client.start_workflow(EndpointRegistryWorkflow.run, state, id=workflow_id, task_queue=task_queue)
    start = WithStartWorkflowOperation(
        EndpointRegistryWorkflow.run,
        state,
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,  # refused: the registry runs
    )
    spec = EndpointSpec(url="https://shop.example/hooks", events=[WebhookEvent.ORDER_ERROR])
    with pytest.raises(WorkflowAlreadyStartedError):
        await update_with_start(client, EndpointRegistryWorkflow.create_endpoint, spec, start=start)
    await client.get_workflow_handle(workflow_id).terminate("test over")
    del start
    gc.collect()
    unread = [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert not unread, unread[0].getMessage()


async def test_an_update_with_start_cancelled_by_its_caller_raises_the_cancellation(client: Client) -> None:
    """The SDK turns its caller's cancellation into WorkflowUpdateRPCTimeoutOrCancelledError: a
    delivery activity cancelled while it asked its flow schedule reported an interruption
    instead of its cancellation. Here a timeout cancels the call, and must see it."""
    account = f"cancels-{uuid.uuid4().hex[:8]}"
    task_queue = f"nobody-{account}"  # no worker: the update is never answered
    workflow_id, state = registry_workflow_id(account), RegistryState(account=account)
    start = WithStartWorkflowOperation(
        EndpointRegistryWorkflow.run,
        state,
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    spec = EndpointSpec(url="https://shop.example/hooks", events=[WebhookEvent.ORDER_ERROR])
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await update_with_start(client, EndpointRegistryWorkflow.create_endpoint, spec, start=start)
    finally:
        await client.get_workflow_handle(workflow_id).terminate("test over")
