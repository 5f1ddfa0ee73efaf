"""The flat JSON object an endpoint receives, with ShippyPro's keys and value types."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import datetime
from typing import Any

from domain.endpoints import MASK, Endpoint
from domain.events import OrderErrorEvent, OrderShippedEvent, TrackingUpdateEvent
from domain.notices import DeliveryFailedNotice, EndpointDisabledNotice, notice_payload
from domain.secrets import Reveal
from domain.signing import signature_header

USER_AGENT = "ShippyWebhooks/1.0"

WireValue = str | int
AnyOrderEvent = OrderShippedEvent | OrderErrorEvent | TrackingUpdateEvent
AnyEvent = AnyOrderEvent | EndpointDisabledNotice | DeliveryFailedNotice


def _flag(value: bool) -> str:
    # ShippyPro sends booleans as the strings "0" and "1".
    return "1" if value else "0"


def wire_payload(event: AnyOrderEvent) -> dict[str, WireValue]:
    """The payload in the seed's key order: event fields first, then the order's."""
    order = event.order
    head: dict[str, WireValue] = {"Event": event.event.value, "tracking": order.tracking_number}
    match event:
        case TrackingUpdateEvent(tracking=t):
            head |= {
                "date": t.date,
                "message": t.message,
                "city": t.city,
                "est_delivery_date": str(t.est_delivery_date),
                "first_status_date": str(t.first_status_date),
                "late": _flag(t.late),
                "code": t.code,
            }
        case OrderShippedEvent(shipment=s):
            head |= {"date": s.date, "LabelURL": s.label_url}
        case OrderErrorEvent(error=e):
            head |= {"date": e.date, "Error": e.message}
    return head | {
        "OrderID": order.order_id,
        "TransactionID": order.transaction_id,
        "TrackingCarrier": order.carrier,
        "MarketplaceID": order.marketplace_id,
        "MarketplacePlatform": order.marketplace_platform,
        "ExternalLink": order.external_link,
        "FromAddressCompany": order.from_address.company,
        "ToAddressCompany": order.to_address.company,
        "FromAddressCountry": order.from_address.country,
        "ToAddressCountry": order.to_address.country,
        "IsReturn": _flag(order.is_return),
    }


def wire_body(event: AnyEvent) -> str:
    """The exact request body: compact JSON, UTF-8 characters kept as they are."""
    payload: dict[str, Any] = (
        notice_payload(event)
        if isinstance(event, EndpointDisabledNotice | DeliveryFailedNotice)
        else wire_payload(event)
    )
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def order_fields(event: AnyEvent) -> tuple[str, str, str]:
    """The order id, transaction id and carrier the log shows for a delivery of `event`."""
    if isinstance(event, DeliveryFailedNotice):
        return event.order_id, "", ""
    if isinstance(event, EndpointDisabledNotice):
        return "", "", ""
    return event.order.order_id, event.order.transaction_id, event.order.carrier


def request_headers(endpoint: Endpoint, reveal: Reveal, webhook_id: str, body: str, now: datetime) -> dict[str, str]:
    """Every header of the POST, secrets included (`reveal` opens the sealed ones); signed when the
    endpoint has a signing secret."""
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
    }
    signatures = signature_header(endpoint.signing_secrets, reveal, webhook_id, timestamp, body, now)
    if signatures:
        headers["webhook-signature"] = signatures
    if endpoint.auth is not None:
        credentials = f"{endpoint.auth.username}:{reveal(endpoint.auth.password, 'auth.password')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
    if endpoint.custom_header is not None:
        headers[endpoint.custom_header.key] = reveal(endpoint.custom_header.value, "custom_header.value")
    return headers


def masked_headers(endpoint: Endpoint, headers: dict[str, str]) -> dict[str, str]:
    """The headers as the delivery log may show them: credentials replaced by a mask."""
    secret_names = {"authorization"}
    if endpoint.custom_header is not None:
        secret_names.add(endpoint.custom_header.key.lower())
    return {name: (MASK if name.lower() in secret_names else value) for name, value in headers.items()}


# A credential at least this long is masked wherever it appears in an answer; a shorter one
# only where it stands whole (a header value, a JSON string), or masking it would garble the
# answer ("1" in every number) and show where it was.
MASKED_ANYWHERE_CHARS = 8


def echoed_credentials(endpoint: Endpoint, headers: dict[str, str]) -> list[str]:
    """The credentials `headers` carry, as a receiver echoing its request (httpbin's /anything,
    many test receivers) would show them in its answer: whole, as their parts (an Authorization
    value's token, and a Basic token's `user:password` and password), JSON-escaped. Longest
    first, so a mask covers the whole of one before a part of it."""
    secret_names = {"authorization"} | ({endpoint.custom_header.key.lower()} if endpoint.custom_header else set())
    found: set[str] = set()
    for name, value in headers.items():
        if name.lower() not in secret_names or not value:
            continue
        found.add(value)
        scheme, _, token = value.partition(" ")
        if name.lower() == "authorization" and token:  # Basic, Bearer or any scheme
            found.add(token)
            if scheme == "Basic":
                with contextlib.suppress(ValueError):
                    user_and_password = base64.b64decode(token).decode()
                    found.update({user_and_password, user_and_password.partition(":")[2]})
    found |= {json.dumps(secret)[1:-1] for secret in found}
    return sorted((secret for secret in found if secret), key=len, reverse=True)


def mask_echoes(text: str, credentials: list[str]) -> str:
    """`text` with every credential the request carried replaced by the log's mask: a long one
    wherever it is, a short one where it is the whole text or a whole JSON string."""
    for secret in credentials:
        if text == secret:
            return MASK
        if len(secret) >= MASKED_ANYWHERE_CHARS:
            text = text.replace(secret, MASK)
        else:
            text = text.replace(f'"{secret}"', f'"{MASK}"')
    return text
