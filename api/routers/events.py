"""`/v1/events`: accept an order event and start one delivery per subscribed endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import AccountDep, ClientDep, RegistryDep, SettingsDep
from api.metrics import EVENTS_ACCEPTED
from domain.delivery import DeliveryRef, EventFanout
from domain.events import OrderEvent
from workflows.fanout import EventFanoutWorkflow, fanout_workflow_id

FANOUT_WAIT_SECONDS = 10.0

router = APIRouter(prefix="/v1/events", tags=["events"])


class EventAccepted(BaseModel):
    id: str
    deliveries: list[DeliveryRef]


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def post_event(
    event: Annotated[OrderEvent, Body()],
    registry: RegistryDep,
    client: ClientDep,
    settings: SettingsDep,
    account: AccountDep,
) -> EventAccepted:
    """Accept an event. A 202 means every listed delivery is durably started.

    `id` is the idempotency key: the same id again starts nothing new and
    answers the same deliveries; the same id with another body is a 409.
    """
    event = event.model_copy(update={"id": event.id or f"evt_{uuid.uuid4().hex}"})
    assert event.id is not None
    fingerprint = event.fingerprint()
    workflow_id = fanout_workflow_id(account, event.id)
    fanout = EventFanout(
        account=account,
        event=event,
        fingerprint=fingerprint,
        subscriptions=await registry.subscriptions(event.event),
    )
    try:
        handle = await client.start_workflow(
            EventFanoutWorkflow.run,
            fanout,
            id=workflow_id,
            task_queue=settings.task_queue,
            # A fan-out that failed may be posted again; one that completed may not.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            static_summary=f"{event.event.value} order {event.order.order_id}: {len(fanout.subscriptions)} deliveries",
        )
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle_for(EventFanoutWorkflow.run, workflow_id)
        earlier = await handle.result()
        if earlier.fingerprint != fingerprint:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"id: event {event.id} was already accepted with a different body"
            ) from None
        return EventAccepted(id=event.id, deliveries=earlier.deliveries)
    # Accepted and durable from here. Waiting for the fan-out to start the deliveries
    # means their ids resolve as soon as the client reads them; a worker that is
    # down delays them but loses nothing, so past the wait the answer stands.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(handle.result(), FANOUT_WAIT_SECONDS)
    EVENTS_ACCEPTED.labels(event.event.value).inc()
    return EventAccepted(id=event.id, deliveries=fanout.deliveries)
