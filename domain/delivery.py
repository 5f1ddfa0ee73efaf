"""Inputs and answers of the delivery pipeline, shared by API, workflows and activities."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from domain.endpoints import MAX_RETRIES, Subscription
from domain.events import OrderErrorEvent, OrderEvent, OrderShippedEvent, TrackingUpdateEvent
from domain.ids import event_delivery_id, first_connection_id, notice_delivery_id
from domain.notices import DeliveryFailedNotice, EndpointDisabledNotice
from domain.records import AttemptRecord, DeliveryKind, DeliveryRecord, DeliveryResult
from domain.samples import sample_order_shipped
from domain.wire import order_fields

DEFAULT_ACCOUNT = "default"
ACCOUNT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


# What a delivery carries: an order event, or a notice the service raised (CONTRACT §11).
DeliveredEvent = Annotated[
    OrderShippedEvent | OrderErrorEvent | TrackingUpdateEvent | EndpointDisabledNotice | DeliveryFailedNotice,
    Field(discriminator="event"),
]


class DeliveryInput(BaseModel):
    """Starts one `DeliveryWorkflow`: an event for one endpoint. Holds no secret."""

    delivery_id: str
    kind: DeliveryKind
    account: str = DEFAULT_ACCOUNT
    endpoint_id: str
    endpoint_url: str  # when the delivery started; the send uses the endpoint's URL at that moment
    event: DeliveredEvent
    max_attempts: Annotated[int, Field(ge=1, le=MAX_RETRIES + 1)]
    rerun_of: str | None = None
    # What the first delivery of this event to this endpoint was, for a re-run (and re-runs of
    # re-runs): a test's re-run raises no notice, as the test did not.
    rerun_of_kind: DeliveryKind | None = None
    # The `webhook-id` header: the delivery's own id, except that a re-run keeps the
    # original's, so a receiver that did process the first one can tell it is the same message.
    message_id: str = ""  # filled in by _message_id
    # The registry version ingest read the subscriptions at, when it was ingest.
    registry_version: int | None = None
    # Whether the run takes the first-attempt-local shape because it was started in it,
    # rather than by asking `workflow.patched` (false in inputs recorded before the field,
    # whose runs ask). A version marker would cost every delivery two history events and a
    # visibility write, as versioning also upserts `TemporalChangeVersion`.
    first_attempt_local: bool = False
    # The same for its waits in a FIFO queue: its workflow waits for its turn (patch
    # turn-signalled), a version marker every ordered delivery would otherwise ask for.
    waits_for_turn: bool = False
    # Every attempt runs in the retries' activity, the first too, behind first attempts
    # (domain.endpoints.starts_in_activity says when; only ingest sets it). Its own shape:
    # false in every input recorded before the field. A worker that does not know it would
    # try the first POST locally, which a newer worker cannot replay: workers are deployed
    # before the API (docs/releasing.md).
    attempts_in_activity: bool = False

    @model_validator(mode="before")
    @classmethod
    def _message_id(cls, data: Any) -> Any:
        """A new delivery is its own message; inputs recorded before the field had this
        name call a re-run's `webhook_id` (null for the others)."""
        if isinstance(data, dict) and not data.get("message_id"):
            data = dict(data)
            data["message_id"] = data.pop("webhook_id", None) or data.get("delivery_id")
        return data

    @property
    def event_id(self) -> str:
        assert self.event.id is not None, "events get an id before they enter the pipeline"
        return self.event.id

    @property
    def original_kind(self) -> DeliveryKind:
        """What the delivery is at heart: a re-run's is the kind of the delivery it goes back to."""
        return self.rerun_of_kind or self.kind

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
        if date_end is not None and last is not None:
            # The workflow's clock reads when its ending task began: for a first attempt run inside
            # that task, before the POST. The delivery ends no earlier than its last exchange.
            date_end = max(date_end, last.started_at + timedelta(milliseconds=last.duration_ms))
        order_id, transaction_id, carrier = order_fields(self.event)
        return DeliveryRecord(
            id=self.delivery_id,
            kind=self.kind,
            event_id=self.event_id,
            event=self.event.event,
            endpoint_id=self.endpoint_id,
            endpoint_url=last.request.url if last else self.endpoint_url,
            order_id=order_id,
            transaction_id=transaction_id,
            carrier=carrier,
            result=result,
            retry=retries,
            date=date,
            date_end=date_end,
            time_spent_ms=last.duration_ms if last else None,
            request=last.request if last else None,
            response=last.response if last else None,
            error=error,
            rerun_of=self.rerun_of,
            attempts=last.all_attempts() if last else [],
        )


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
    account: str,
    event: OrderEvent | EndpointDisabledNotice | DeliveryFailedNotice,
    subscriptions: Sequence[Subscription],
    registry_version: int | None = None,
) -> list[DeliveryInput]:
    """One delivery per subscribed endpoint, numbered in the subscriptions' order: an order
    event's (its acceptance record keeps that order), or the registry workflow's
    ENDPOINT_DISABLED notice's (a workflow lists its subscribers once; its child ids are
    commands, which replay checks)."""
    assert event.id is not None, "events get an id before they enter the pipeline"
    return [
        _delivery(account, event, sub, event_delivery_id(account, event.id, n), registry_version)
        for n, sub in enumerate(subscriptions)
    ]


def notice_deliveries(
    account: str, notice: EndpointDisabledNotice | DeliveryFailedNotice, subscriptions: Sequence[Subscription]
) -> list[DeliveryInput]:
    """A notice raised by an activity (DELIVERY_FAILED), one delivery per subscriber, named by
    endpoint: nothing records its subscribers, so the activity, retried after one was deleted,
    lists the others again; numbered, the last would take the deleted one's id, find it started
    and never get its own (CONTRACT §11)."""
    return [
        _delivery(account, notice, sub, notice_delivery_id(account, notice.id, sub.endpoint_id), None)
        for sub in subscriptions
    ]


def _delivery(
    account: str,
    event: OrderEvent | EndpointDisabledNotice | DeliveryFailedNotice,
    sub: Subscription,
    delivery_id: str,
    registry_version: int | None,
) -> DeliveryInput:
    return DeliveryInput(
        delivery_id=delivery_id,
        kind=DeliveryKind.EVENT,
        account=account,
        endpoint_id=sub.endpoint_id,
        endpoint_url=sub.url,
        event=event,
        max_attempts=sub.retry.max_attempts,
        registry_version=registry_version,
    )


def first_connection(account: str, endpoint_id: str, url: str, max_attempts: int) -> DeliveryInput:
    """The ORDER_SHIPPED sample a new endpoint always receives (the seed: "always sends")."""
    return DeliveryInput(
        delivery_id=first_connection_id(endpoint_id),
        kind=DeliveryKind.FIRST_CONNECTION,
        account=account,
        endpoint_id=endpoint_id,
        endpoint_url=url,
        event=sample_order_shipped(f"first-connection-{endpoint_id}"),
        max_attempts=max_attempts,
    )
