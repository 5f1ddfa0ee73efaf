"""`/v1/events`: accept an order event and start one delivery per subscribed endpoint."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, status
from pydantic import BaseModel

from api.deps import IngestDep
from api.errors import documented, invalid_input
from api.json_body import StrictJsonRoute, no_key_given_twice
from api.metrics import EVENTS_ACCEPTED
from domain.delivery import DeliveryRef
from domain.events import OrderEvent, unindexable_order_fields

router = APIRouter(
    prefix="/v1/events",
    tags=["events"],
    route_class=StrictJsonRoute,
    dependencies=[Depends(no_key_given_twice)],
)


class EventAccepted(BaseModel):
    id: str
    deliveries: list[DeliveryRef]


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses=documented(401, 409, 413, 422, 503))
async def post_event(event: Annotated[OrderEvent, Body()], ingest: IngestDep) -> EventAccepted:
    """Accept an event. A 202 means every listed delivery is durably started.

    `id` is the idempotency key: the same id again starts nothing new and
    answers the same deliveries; the same id with another body is a 409.
    """
    if problems := unindexable_order_fields(event.order):
        raise invalid_input({("body", "order", name): why for name, why in problems.items()})
    event = event.model_copy(update={"id": event.id or f"evt_{uuid.uuid4().hex}"})
    assert event.id is not None
    deliveries = await ingest.accept(event)  # EventConflict: a 409 (api.errors)
    EVENTS_ACCEPTED.labels(event.event.value).inc()
    return EventAccepted(id=event.id, deliveries=deliveries)
