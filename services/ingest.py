"""Accepting an event: one `DeliveryWorkflow` started per subscribed endpoint.

The deliveries' ids come from the event (`domain.ids.event_delivery_id`),
so Temporal's id uniqueness is the idempotency store: delivery 0 is started
first and carries the acceptance (the body's fingerprint and the endpoints) in
its memo. A second post of the same id finds it, answers the same deliveries,
and starts any a crash kept the first post from starting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.delivery import AcceptedEvent, DeliveryInput, DeliveryRef, event_deliveries
from domain.endpoints import Endpoint, RetrySettings, Subscription
from domain.events import OrderEvent
from domain.flow import Ordering
from domain.ids import event_delivery_id
from infra.temporal import or_none
from services.deliveries import start_delivery
from services.endpoints import EndpointRegistry
from services.flow import EndpointFlow

# The memo key of delivery 0 that holds its event's `AcceptedEvent`.
ACCEPTED_EVENT_MEMO = "accepted_event"


class EventConflict(Exception):
    def __init__(self, event_id: str) -> None:
        super().__init__(f"event {event_id} was already accepted with a different body")


class EventIngest:
    """One account's door for events."""

    def __init__(
        self, client: Client, task_queue: str, account: str, registry: EndpointRegistry, flow: EndpointFlow
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._account = account
        self._registry = registry
        self._flow = flow

    async def accept(self, event: OrderEvent) -> list[DeliveryRef]:
        """Start the event's deliveries; when this returns, every one is durably started.

        Raises EventConflict for a known id with another body.
        """
        assert event.id is not None, "events get an id before they are accepted"
        snapshot = await self._registry.snapshot()
        subscriptions = snapshot.subscriptions(event.event) if snapshot else []
        accepted = AcceptedEvent(fingerprint=event.fingerprint(), endpoint_ids=[s.endpoint_id for s in subscriptions])
        if not subscriptions:
            # Nothing to start and nothing recorded, unless an earlier post of this id was.
            earlier = await self._earlier(event.id)
            return await self._again(event, accepted, earlier) if earlier else []
        assert snapshot is not None, "subscriptions come from a snapshot"
        deliveries = event_deliveries(self._account, event, subscriptions, snapshot.version)
        first, *rest = _shaped(deliveries, snapshot.endpoints)
        try:
            await start_delivery(self._client, self._task_queue, first, memo={ACCEPTED_EVENT_MEMO: accepted})
        except WorkflowAlreadyStartedError:
            earlier = await self._earlier(event.id)
            assert earlier is not None, "delivery 0 exists, so it has its memo"
            return await self._again(event, accepted, earlier)
        # A concurrent post of the same id, past delivery 0 already, may have started some of them.
        await asyncio.gather(*(self._start_if_missing(d) for d in rest))
        await self._queue_in_order(event, [first, *rest], subscriptions)
        return accepted.refs(self._account, event.id)

    async def _queue_in_order(
        self, event: OrderEvent, deliveries: list[DeliveryInput], subscriptions: list[Subscription]
    ) -> None:
        """Before the 202, FIFO endpoints learn each delivery's place in its order's queue,
        so events posted one after the other are POSTed in that order. Started first: a
        crash in between leaves a delivery that takes its place when it first asks."""
        fifo = {s.endpoint_id for s in subscriptions if s.ordering == Ordering.FIFO}
        await asyncio.gather(
            *(
                self._flow.enqueue(d.endpoint_id, event.order.order_id, [d.delivery_id])
                for d in deliveries
                if d.endpoint_id in fifo
            )
        )

    async def _earlier(self, event_id: str) -> AcceptedEvent | None:
        handle = self._client.get_workflow_handle(event_delivery_id(self._account, event_id, 0))
        description = await or_none(handle.describe())
        if description is None:
            return None
        found: AcceptedEvent | None = await description.memo_value(ACCEPTED_EVENT_MEMO, None, type_hint=AcceptedEvent)
        if found is None:  # a delivery of something else holds the id (an event id is never re-used)
            raise EventConflict(event_id)
        return found

    async def _again(self, event: OrderEvent, now: AcceptedEvent, earlier: AcceptedEvent) -> list[DeliveryRef]:
        """A re-post: the same deliveries, after starting those an interrupted first post left."""
        assert event.id is not None
        if earlier.fingerprint != now.fingerprint:
            raise EventConflict(event.id)
        # The endpoints were fixed at acceptance; where they point now is read from the registry.
        # One deleted since gets its delivery anyway, which stops at once and says why.
        snapshot = await self._registry.snapshot()
        endpoints = snapshot.endpoints if snapshot else {}
        subscriptions = [
            e.subscription()
            if (e := endpoints.get(endpoint_id))
            else Subscription(endpoint_id=endpoint_id, url="(deleted)", retry=RetrySettings())
            for endpoint_id in earlier.endpoint_ids
        ]
        _, *rest = _shaped(event_deliveries(self._account, event, subscriptions), endpoints)
        await asyncio.gather(*(self._start_if_missing(d) for d in rest))
        return earlier.refs(self._account, event.id)

    async def _start_if_missing(self, delivery: DeliveryInput) -> None:
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await start_delivery(self._client, self._task_queue, delivery)


def _shaped(deliveries: list[DeliveryInput], endpoints: Mapping[str, Endpoint]) -> list[DeliveryInput]:
    """Deliveries to an endpoint that a first attempt inside the workflow task would not serve
    make every attempt in the retries' activity (domain.endpoints.starts_in_activity)."""
    now = datetime.now(UTC)
    in_activity = {endpoint_id for endpoint_id, e in endpoints.items() if e.starts_in_activity(now)}
    return [d.model_copy(update={"attempts_in_activity": d.endpoint_id in in_activity}) for d in deliveries]
