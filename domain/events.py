"""Incoming order events, as services post them to `POST /v1/events`."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.validation import AbsoluteHttpUrl, check_printable

EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

# Seconds since 1970, up to the last second of year 9999.
# Strict: "1622152900" is text, not a moment (lax pydantic would take it, and "1" for a flag).
EpochSeconds = Annotated[int, Field(ge=0, le=253402300799, strict=True)]
# A carrier's tracking status code (ShippyPro's are small numbers: the seed's is 6).
TrackingCode = Annotated[int, Field(ge=0, le=9999, strict=True)]
ShortText = Annotated[str, Field(max_length=256)]


class EventType(StrEnum):
    ORDER_SHIPPED = "ORDER_SHIPPED"
    ORDER_ERROR = "ORDER_ERROR"
    TRACKING_UPDATE = "TRACKING_UPDATE"
    # Raised by the service itself (CONTRACT §11), never posted to /v1/events.
    ENDPOINT_DISABLED = "ENDPOINT_DISABLED"
    DELIVERY_FAILED = "DELIVERY_FAILED"


OPERATIONAL_EVENTS = frozenset({EventType.ENDPOINT_DISABLED, EventType.DELIVERY_FAILED})


def notice_id_prefix(event: EventType) -> str:
    """How the ids of the service's own notices of `event` begin (domain.notices.notice_id)."""
    return f"{event.value.lower()}-"


_RESERVED_PREFIXES = tuple(sorted(notice_id_prefix(e) for e in OPERATIONAL_EVENTS))


def _not_a_notice_id(value: str | None) -> str | None:
    # A posted event with a notice's id would take that notice's delivery, or find it taken.
    if value is not None and value.startswith(_RESERVED_PREFIXES):
        raise ValueError(f"must not begin with {' or '.join(_RESERVED_PREFIXES)}: the service's notices use those")
    return value


class StrictModel(BaseModel):
    # Unknown fields are mistakes in a service's integration: naming them
    # beats silently dropping data the sender believes we deliver.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Address(StrictModel):
    company: ShortText = ""
    country: Annotated[str, Field(max_length=64)] = ""


class Order(StrictModel):
    order_id: Annotated[str, Field(min_length=1, max_length=64)]
    transaction_id: ShortText = ""
    carrier: ShortText = ""
    tracking_number: ShortText = ""
    marketplace_id: ShortText = "0"
    marketplace_platform: ShortText = ""
    external_link: Annotated[str, Field(max_length=2048)] = ""
    from_address: Address = Address()
    to_address: Address = Address()
    is_return: Annotated[bool, Field(strict=True)] = False


# The order's fields the delivery log indexes (search attributes) and filters on.
INDEXED_ORDER_FIELDS = ("order_id", "transaction_id", "carrier")


def unindexable_order_fields(order: Order) -> dict[str, str]:
    """Indexed fields a log filter could not match, with why: the API refuses such an event.
    A control character (NUL above all) breaks visibility stores, and the SQL visibility
    store's query language finds no value holding a double quote, nor one where a backslash
    comes before a quote or ends it. Checked at the API only, so a delivery accepted before
    these rules still reads."""
    problems = {}
    for name in INDEXED_ORDER_FIELDS:
        value = getattr(order, name)
        try:
            check_printable(value)
        except ValueError as err:
            problems[name] = str(err)
        else:
            if '"' in value or "\\" in value:
                problems[name] = 'must not contain " or \\ (the log could not be filtered by it)'
    return problems


class Shipment(StrictModel):
    date: EpochSeconds
    label_url: AbsoluteHttpUrl


class OrderError(StrictModel):
    date: EpochSeconds
    message: Annotated[str, Field(min_length=1, max_length=2048)]


class Tracking(StrictModel):
    date: EpochSeconds
    message: Annotated[str, Field(max_length=2048)] = ""
    city: ShortText = ""
    code: TrackingCode
    est_delivery_date: EpochSeconds = 0
    first_status_date: EpochSeconds = 0
    late: Annotated[bool, Field(strict=True)] = False


class _EventBase(StrictModel):
    id: Annotated[str | None, Field(pattern=EVENT_ID_PATTERN), AfterValidator(_not_a_notice_id)] = None
    order: Order

    def fingerprint(self) -> str:
        """Digest of everything but the id: the same id with another body is a conflict."""
        content = self.model_dump(mode="json", exclude={"id"})
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class OrderShippedEvent(_EventBase):
    event: Literal[EventType.ORDER_SHIPPED]
    shipment: Shipment


class OrderErrorEvent(_EventBase):
    event: Literal[EventType.ORDER_ERROR]
    error: OrderError


class TrackingUpdateEvent(_EventBase):
    event: Literal[EventType.TRACKING_UPDATE]
    tracking: Tracking


OrderEvent = Annotated[
    OrderShippedEvent | OrderErrorEvent | TrackingUpdateEvent,
    Field(discriminator="event"),
]
