"""Operational events (CONTRACT §11): what the service itself tells a merchant's endpoints.

`ENDPOINT_DISABLED` when an endpoint of the account is disabled (by a 410 or
the health rule) and `DELIVERY_FAILED` when a delivery ends failed. They go to
the account's other endpoints that subscribe, as deliveries like any other; a
delivery of one raises no further notice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import Field

from domain.events import EventType, StrictModel, notice_id_prefix


class _NoticeBase(StrictModel):
    id: str
    endpoint_id: str  # the endpoint the notice is about: it never receives it
    endpoint_url: str
    date: int  # epoch seconds


class EndpointDisabledNotice(_NoticeBase):
    event: Literal[EventType.ENDPOINT_DISABLED]
    reason: str
    delivery_id: str | None = None


class DeliveryFailedNotice(_NoticeBase):
    event: Literal[EventType.DELIVERY_FAILED]
    delivery_id: str
    order_id: str
    error: str
    retries: int
    payload: dict[str, Any]  # the JSON object the failed delivery sent


Notice = Annotated[EndpointDisabledNotice | DeliveryFailedNotice, Field(discriminator="event")]


def notice_id(event: EventType, about: str) -> str:
    """An event id derived from what the notice is about, so raising it again finds it started."""
    digest = hashlib.sha256(about.encode()).hexdigest()[:24]
    return f"{notice_id_prefix(event)}{digest}"


def notice_payload(notice: EndpointDisabledNotice | DeliveryFailedNotice) -> dict[str, Any]:
    """The JSON object a subscribing endpoint receives, with the contract's keys."""
    match notice:
        case EndpointDisabledNotice():
            return {
                "Event": notice.event.value,
                "EndpointID": notice.endpoint_id,
                "EndpointURL": notice.endpoint_url,
                "Reason": notice.reason,
                "DeliveryID": notice.delivery_id,
                "date": notice.date,
            }
        case DeliveryFailedNotice():
            return {
                "Event": notice.event.value,
                "DeliveryID": notice.delivery_id,
                "EndpointID": notice.endpoint_id,
                "EndpointURL": notice.endpoint_url,
                "OrderID": notice.order_id,
                "Error": notice.error,
                "Retries": notice.retries,
                "date": notice.date,
                "Payload": notice.payload,
            }


def failed_delivery_notice(
    delivery_id: str, endpoint_id: str, endpoint_url: str, order_id: str, error: str, retries: int, body: str, date: int
) -> DeliveryFailedNotice:
    return DeliveryFailedNotice(
        id=notice_id(EventType.DELIVERY_FAILED, delivery_id),
        event=EventType.DELIVERY_FAILED,
        delivery_id=delivery_id,
        endpoint_id=endpoint_id,
        endpoint_url=endpoint_url,
        order_id=order_id,
        error=error,
        retries=retries,
        date=date,
        payload=json.loads(body),
    )
