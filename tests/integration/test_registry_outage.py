"""A registry that does not answer interrupts a delivery's retries without spending them, and the
runs it interrupted are kept, as known, in the heartbeat Temporal hands the next run (a run
that left no trace would count as lost with its worker, and five of those stop a delivery).
What a run could not tell the registry after its last POST, the next run tells it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.deliver_webhook import DeliveryActivities
from activities.http_exchange import WebhookPoster
from domain.activity_contract import AttemptProgress
from domain.endpoints import DeliveryOutcome, Endpoint
from domain.ids import first_connection_id
from infra.http import http_client
from infra.temporal import UpdateSlots
from services.deliveries import start_delivery
from services.endpoints import EndpointRegistry, SnapshotCache
from services.flow import EndpointFlow
from services.notices import Notices
from settings import Settings
from tests.integration.helpers import create_endpoint, delivery_outcome, tracking_event
from tests.integration.test_events import planned
from tests.receiver import OK, error
from tests.waiting import eventually
from worker import cache_limits, workflow_runner
from workflows.delivery import DeliveryWorkflow


class RegistryDown:
    """The account's real registry, except that the retries' runs cannot read it while `down`."""

    def __init__(self, registry: EndpointRegistry, down: bool = True) -> None:
        self.down = down
        self.gone_refused = 0  # reports of a 410 to refuse, as a registry that does not answer
        self._registry = registry

    async def for_delivery(self, endpoint_id: str, seen_version: int | None = None) -> Endpoint | None:
        if self.down and not activity.info().is_local:
            raise ConnectionError("the registry did not answer")
        return await self._registry.for_delivery(endpoint_id, seen_version)

    async def record_outcome(self, outcome: DeliveryOutcome) -> None:
        await self._registry.record_outcome(outcome)

    async def throttle(self, endpoint_id: str, until: datetime, url: str) -> None:
        await self._registry.throttle(endpoint_id, until, url)

    async def posts_failing(self, endpoint_id: str, at: datetime, url: str) -> None:
        await self._registry.posts_failing(endpoint_id, at, url)

    async def gone(self, endpoint_id: str, delivery_id: str, at: datetime, url: str) -> None:
        if self.gone_refused:
            self.gone_refused -= 1
            raise ConnectionError("the registry did not answer")
        await self._registry.gone(endpoint_id, delivery_id, at, url)


@asynccontextmanager
async def worker_with(client: Client, settings: Settings, registry: RegistryDown, queue: str) -> AsyncIterator[None]:
    """A delivery worker on its own task queue, as worker.py builds one, reading `registry`."""
    secrets = settings.secret_box()
    snapshots, flow_slots = SnapshotCache(), UpdateSlots()
    async with http_client(settings.http_timeout, allow_private_networks=True) as pooled:
        activities = DeliveryActivities(
            poster=WebhookPoster(pooled),
            endpoints=lambda _account: registry,
            schedules=lambda account: EndpointFlow(client, queue, account, flow_slots),
            notices=lambda account: Notices(
                client, queue, account, EndpointRegistry(client, settings.task_queue, account, snapshots, secrets)
            ),
            backoff=settings.backoff(),
            http_timeout=settings.http_timeout,
            health=settings.health_policy(),
            secrets=secrets,
        )
        worker = Worker(
            client,
            task_queue=queue,
            workflows=[DeliveryWorkflow],
            activities=[activities.deliver_webhook],
            workflow_runner=workflow_runner(),
            **cache_limits(settings),
        )
        async with worker:
            yield


async def test_runs_interrupted_by_a_registry_outage_are_known_to_the_next_run(api, client, settings, receiver):
    url = receiver.url(OK, error(500), OK)  # the first connection, the first attempt, its retry
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 3})
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    _, [delivery] = await planned(client, settings, tracking_event())
    registry = RegistryDown(EndpointRegistry(client, settings.task_queue, "default", SnapshotCache()))
    queue = f"outage-{uuid.uuid4().hex[:8]}"

    async with worker_with(client, settings, registry, queue):
        handle = await start_delivery(client, queue, delivery)

        async def retries_run() -> Any:
            pending = (await handle.describe()).raw_description.pending_activities
            return pending[0] if pending else None

        # Two runs of the retries' activity interrupted (Temporal retries them after 1 s, 2 s).
        waiting = await eventually(retries_run, lambda run: run is not None and run.attempt >= 3, what="3rd run")
        [details] = await client.data_converter.decode(waiting.heartbeat_details.payloads)
        registry.down = False
        record = await delivery_outcome(client, delivery.delivery_id)

    assert AttemptProgress.model_validate(details).model_dump(include={"attempts", "held"}) == {
        "attempts": 1,
        "held": 2,
    }
    assert (record.result, record.retry) == ("success", 1)  # no retry spent on the outage
    assert len(receiver.requests(url)) == 3


async def test_a_410_whose_report_failed_still_disables_the_endpoint(api, client, settings, receiver):
    url = receiver.url(OK, error(410))
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 3})
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    _, [delivery] = await planned(client, settings, tracking_event())
    registry = RegistryDown(EndpointRegistry(client, settings.task_queue, "default", SnapshotCache()), down=False)
    registry.gone_refused = 1  # the first attempt's report of its 410
    queue = f"outage-{uuid.uuid4().hex[:8]}"

    async with worker_with(client, settings, registry, queue):
        await start_delivery(client, queue, delivery)
        record = await delivery_outcome(client, delivery.delivery_id)

    assert (record.result, record.retry) == ("failed", 0)  # a 410 is never retried
    assert len(receiver.requests(url)) == 2  # the first connection and the 410: the report made no POST
    shown = (await api.get(f"/v1/endpoints/{endpoint['id']}")).json()
    assert shown["disabled"] and delivery.delivery_id in shown["disabled_reason"]
