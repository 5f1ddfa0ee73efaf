"""A registry's history stays short enough to replay within a workflow task's timeout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from domain.ids import registry_workflow_id
from settings import Settings
from tests.integration.helpers import api_with
from tests.receiver import Receiver
from tests.waiting import eventually
from worker import delivery_worker
from workflows.endpoint_registry import HISTORY_EVENTS_KEPT, EndpointRegistryWorkflow
from workflows.registry_messages import EndpointThrottle

REPORTS = 400  # each one a change: ~2 events, and a workflow task every few


async def test_a_busy_registry_continues_as_new_at_its_own_limit_and_keeps_every_endpoint(
    settings: Settings, client: Client, receiver: Receiver
) -> None:
    account = "long-lived"
    own = settings.model_copy(
        update={"task_queue": settings.task_queue + "-long-lived", "api_tokens": {account: SecretStr("token-l")}}
    )
    auth = {"Authorization": "Bearer token-l"}
    url = receiver.url()
    async with delivery_worker(client, own) as worker, worker, api_with(own) as http:
        created = await http.post("/v1/endpoints", json={"url": url, "events": ["TRACKING_UPDATE"]}, headers=auth)
        endpoint_id = created.json()["id"]
        registry = client.get_workflow_handle_for(EndpointRegistryWorkflow.run, registry_workflow_id(account))
        first_run = (await registry.describe()).run_id
        # A receiver asking for longer and longer pauses: every report changes the registry.
        start = datetime.now(UTC) + timedelta(hours=1)
        for n in range(REPORTS):
            until = start + timedelta(seconds=n)
            await registry.signal(
                EndpointRegistryWorkflow.throttle, EndpointThrottle(endpoint_id=endpoint_id, until=until)
            )
        last_until = start + timedelta(seconds=REPORTS - 1)
        endpoint = await eventually(
            lambda: http.get(f"/v1/endpoints/{endpoint_id}", headers=auth),
            lambda r: r.json().get("throttled_until") == last_until.isoformat().replace("+00:00", "Z"),
            what="the last pause",
        )
        runs = [run async for run in client.list_workflows(f'WorkflowId = "{registry_workflow_id(account)}"')]
        first = client.get_workflow_handle(registry_workflow_id(account), run_id=first_run)
        first_events = [event async for event in first.fetch_history_events()]

    assert len(runs) >= 2
    assert first_events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert HISTORY_EVENTS_KEPT <= len(first_events) < HISTORY_EVENTS_KEPT + 100
    assert endpoint.json()["url"] == url and endpoint.json()["disabled"] is False
