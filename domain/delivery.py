"""Inputs and answers of the delivery pipeline, shared by API, workflows and activities."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError

from domain.endpoints import MAX_RETRIES, Subscription
from domain.events import OrderEvent
from domain.records import AttemptRecord, DeliveryKind, DeliveryRecord, DeliveryResult

DEFAULT_ACCOUNT = "default"
ACCOUNT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"

# The delivery activity, and the failure types that end a delivery without retrying.
DELIVER_WEBHOOK = "deliver_webhook"
RECOVER_DELIVERIES = "recover_deliveries"
ENDPOINT_DELETED = "EndpointDeleted"
FORBIDDEN_DESTINATION = "ForbiddenDestination"
ENDPOINT_DISABLED = "EndpointDisabled"
# The delivery activity's own time limit in Temporal; one POST must end well within it.
ATTEMPT_TIMEOUT_SECONDS = 60
# A worker that dies mid-attempt is noticed when its heartbeats stop.
HEARTBEAT_EVERY_SECONDS = 2.0
HEARTBEAT_TIMEOUT_SECONDS = 10
# Attempts lost with their worker (no POST recorded) beyond the endpoint's retries.
LOST_ATTEMPTS_ALLOWED = 5


def event_delivery_id(account: str, event_id: str, index: int) -> str:
    """The event's deliveries are numbered from 0 in the order their endpoints were
    subscribed at acceptance: derivable from the event alone, so a re-post finds them."""
    return f"delivery/{account}/{event_id}/{index}"


class DeliveryInput(BaseModel):
    """Starts one `DeliveryWorkflow`: an event for one endpoint. Holds no secret."""

    delivery_id: str
    kind: DeliveryKind
    account: str = DEFAULT_ACCOUNT
    endpoint_id: str
    endpoint_url: str  # when the delivery started; the send uses the endpoint's URL at that moment
    event: OrderEvent
    max_attempts: Annotated[int, Field(ge=1, le=MAX_RETRIES + 1)]
    rerun_of: str | None = None
    # The `webhook-id` header: a re-run keeps the original delivery's, so a
    # receiver that did process the first one can tell it is the same message.
    webhook_id: str | None = None
    # The registry version ingest read the subscriptions at, when it was ingest.
    registry_version: int | None = None

    @property
    def event_id(self) -> str:
        assert self.event.id is not None, "events get an id before they enter the pipeline"
        return self.event.id

    @property
    def message_id(self) -> str:
        return self.webhook_id or self.delivery_id

    def record(
        self,
        last: AttemptRecord | None,
        *,
        result: DeliveryResult,
        error: str | None,
        retries: int,
        date: datetime,
        date_end: datetime | None,
    ) -> DeliveryRecord:
        """The delivery's log record, with what its last POST sent and received."""
        order = self.event.order
        return DeliveryRecord(
            id=self.delivery_id,
            kind=self.kind,
            event_id=self.event_id,
            event=self.event.event,
            endpoint_id=self.endpoint_id,
            endpoint_url=last.request.url if last else self.endpoint_url,
            order_id=order.order_id,
            transaction_id=order.transaction_id,
            carrier=order.carrier,
            result=result,
            retry=retries,
            date=date,
            date_end=date_end,
            time_spent_ms=last.time_spent_ms if last else None,
            request=last.request if last else None,
            response=last.response if last else None,
            error=error,
            rerun_of=self.rerun_of,
        )


class AttemptInput(BaseModel):
    """One call of the `deliver_webhook` activity. The endpoint's secrets are looked up at send time."""

    delivery_id: str
    webhook_id: str
    account: str
    endpoint_id: str
    body: str
    max_posts: int  # the endpoint's retry budget: 1 + max_retries when enabled
    skip_if_disabled: bool = True  # events are; tests and re-runs, asked for by a person, are not
    registry_version: int | None = None  # see DeliveryInput


class PostProgress(BaseModel):
    """What the delivery activity's heartbeat carries across attempts: the POSTs made
    for this delivery, and the last one's record."""

    posts: int = 0
    last: AttemptRecord | None = None

    @classmethod
    def from_details(cls, details: Sequence[Any]) -> PostProgress:
        if not details:
            return cls()
        try:
            return cls.model_validate(details[0])
        except ValidationError:
            return cls()


class DeliveryRef(BaseModel):
    id: str
    endpoint_id: str


class AcceptedEvent(BaseModel):
    """The idempotency record of an accepted event, kept in the memo of its delivery 0:
    the body's fingerprint and the endpoints its deliveries are numbered by."""

    fingerprint: str
    endpoint_ids: list[str]

    def refs(self, account: str, event_id: str) -> list[DeliveryRef]:
        return [
            DeliveryRef(id=event_delivery_id(account, event_id, n), endpoint_id=endpoint_id)
            for n, endpoint_id in enumerate(self.endpoint_ids)
        ]


def event_deliveries(
    account: str, event: OrderEvent, subscriptions: Sequence[Subscription], registry_version: int | None = None
) -> list[DeliveryInput]:
    """One delivery per subscribed endpoint, numbered in the subscriptions' order."""
    assert event.id is not None, "events get an id before they enter the pipeline"
    return [
        DeliveryInput(
            delivery_id=event_delivery_id(account, event.id, n),
            kind=DeliveryKind.EVENT,
            account=account,
            endpoint_id=sub.endpoint_id,
            endpoint_url=sub.url,
            event=event,
            max_attempts=sub.retry.max_attempts,
            registry_version=registry_version,
        )
        for n, sub in enumerate(subscriptions)
    ]


class RecoveryRequest(BaseModel):
    """Re-run every failed delivery of an endpoint started since a moment."""

    account: str = DEFAULT_ACCOUNT
    endpoint_id: str
    since: datetime


class RecoveryResult(BaseModel):
    found: int  # failed deliveries since then
    started: int  # re-runs this recovery started (the others were recovered before)
