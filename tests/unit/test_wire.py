"""The body and headers an endpoint receives: ShippyPro's flat JSON, keys and value types (CONTRACT §3)."""

from __future__ import annotations

import base64
import json
import string
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from domain.endpoints import Endpoint
from domain.events import (
    Address,
    EventType,
    Order,
    OrderError,
    OrderErrorEvent,
    OrderShippedEvent,
    Shipment,
    Tracking,
    TrackingUpdateEvent,
)
from domain.samples import SAMPLE_ORDER, sample_tracking_update
from domain.wire import (
    AnyOrderEvent,
    echoed_credentials,
    mask_echoes,
    masked_headers,
    request_headers,
    wire_body,
    wire_payload,
)
from infra.codec import new_key, parse_key
from infra.secrets import SecretBox

# The seed's Test example, value for value and in its order ("IsReturn" closes it, per CONTRACT §3).
SEED_EXAMPLE: list[tuple[str, str | int]] = [
    ("Event", "TRACKING_UPDATE"),
    ("tracking", "WZ116539070"),
    ("date", 1622671204),
    ("message", "Shipment delivered"),
    ("city", "Florence"),
    ("est_delivery_date", "0"),
    ("first_status_date", "1622152801"),
    ("late", "0"),
    ("code", 6),
    ("OrderID", "24957298"),
    ("TransactionID", "48572_1"),
    ("TrackingCarrier", "FedEx"),
    ("MarketplaceID", "0"),
    ("MarketplacePlatform", "Manual shipment"),
    ("ExternalLink", ""),
    ("FromAddressCompany", "John Doe srl."),
    ("ToAddressCompany", ""),
    ("FromAddressCountry", "IT"),
    ("ToAddressCountry", "IT"),
    ("IsReturn", "0"),
]

ORDER_KEYS: dict[str, type] = {
    "Event": str,
    "tracking": str,
    "date": int,
    "OrderID": str,
    "TransactionID": str,
    "TrackingCarrier": str,
    "MarketplaceID": str,
    "MarketplacePlatform": str,
    "ExternalLink": str,
    "FromAddressCompany": str,
    "ToAddressCompany": str,
    "FromAddressCountry": str,
    "ToAddressCountry": str,
    "IsReturn": str,
}
TRACKING_ONLY: dict[str, type] = {
    "message": str,
    "city": str,
    "est_delivery_date": str,
    "first_status_date": str,
    "late": str,
    "code": int,
}
EXPECTED_TYPES: dict[EventType, dict[str, type]] = {
    EventType.TRACKING_UPDATE: ORDER_KEYS | TRACKING_ONLY,
    EventType.ORDER_SHIPPED: ORDER_KEYS | {"LabelURL": str},
    EventType.ORDER_ERROR: ORDER_KEYS | {"Error": str},
}

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _shipped(label_url: str = "https://x.example/l.pdf?a=1", order: Order = SAMPLE_ORDER) -> OrderShippedEvent:
    return OrderShippedEvent(
        event=EventType.ORDER_SHIPPED, order=order, shipment=Shipment(date=1622152801, label_url=label_url)
    )


def _failed(message: str = "Address not found") -> OrderErrorEvent:
    return OrderErrorEvent(
        event=EventType.ORDER_ERROR, order=SAMPLE_ORDER, error=OrderError(date=1622150000, message=message)
    )


def test_the_test_sample_is_the_seed_example_key_for_key_in_order_with_its_types() -> None:
    """`Test` sends exactly the seed's example: same keys, same order, strings stay strings."""
    payload = wire_payload(sample_tracking_update("x"))
    assert list(payload.items()) == SEED_EXAMPLE
    assert [(key, type(value)) for key, value in payload.items()] == [(k, type(v)) for k, v in SEED_EXAMPLE]


def test_order_shipped_carries_the_label_url_as_given_and_no_tracking_keys() -> None:
    """ORDER_SHIPPED: the order keys, the shipment date and `LabelURL` untouched; nothing of a tracking update."""
    payload = wire_payload(_shipped("https://x.example/l.pdf?a=1"))
    assert payload["Event"] == "ORDER_SHIPPED"
    assert payload["LabelURL"] == "https://x.example/l.pdf?a=1"
    assert payload["date"] == 1622152801
    assert payload["tracking"] == SAMPLE_ORDER.tracking_number
    assert payload["OrderID"] == "24957298"
    assert set(payload) == set(EXPECTED_TYPES[EventType.ORDER_SHIPPED])
    assert not set(payload) & (set(TRACKING_ONLY) | {"Error"})


def test_order_error_carries_the_error_message_and_no_tracking_keys() -> None:
    """ORDER_ERROR: the order keys, the error date and `Error`."""
    payload = wire_payload(_failed("Address not found"))
    assert payload["Event"] == "ORDER_ERROR"
    assert payload["Error"] == "Address not found"
    assert payload["date"] == 1622150000
    assert payload["tracking"] == SAMPLE_ORDER.tracking_number
    assert set(payload) == set(EXPECTED_TYPES[EventType.ORDER_ERROR])
    assert not set(payload) & (set(TRACKING_ONLY) | {"LabelURL"})


def test_a_return_is_flagged_with_the_string_one() -> None:
    """Returns go through the same pipeline; `IsReturn` is "1" (a string, like the seed's "0")."""
    order = SAMPLE_ORDER.model_copy(update={"is_return": True})
    assert wire_payload(_shipped(order=order))["IsReturn"] == "1"
    assert wire_payload(_shipped())["IsReturn"] == "0"


def test_a_late_tracking_update_is_flagged_with_the_string_one() -> None:
    """`late` is the string "1" when the shipment is late."""
    sample = sample_tracking_update("x")
    late = sample.model_copy(update={"tracking": sample.tracking.model_copy(update={"late": True})})
    assert wire_payload(late)["late"] == "1"


def test_the_body_is_compact_json_that_keeps_non_ascii_characters() -> None:
    """The body is compact JSON in UTF-8: "Zürich" travels as is, not as \\u escapes."""
    sample = sample_tracking_update("x")
    event = sample.model_copy(update={"tracking": sample.tracking.model_copy(update={"city": "Zürich"})})
    body = wire_body(event)
    assert body == json.dumps(wire_payload(event), separators=(",", ":"), ensure_ascii=False)
    assert '"city":"Zürich"' in body
    assert ", " not in body and '": ' not in body
    assert "Zürich".encode() in body.encode("utf-8")
    assert json.loads(body) == wire_payload(event)


# --- property: every event, whatever its text, gives a body that is its payload, with the seed's types ---

short = st.text(max_size=256)
epoch = st.integers(min_value=0, max_value=253402300799)
addresses = st.builds(Address, company=short, country=st.text(max_size=64))
orders = st.builds(
    Order,
    order_id=st.text(min_size=1, max_size=64),
    transaction_id=short,
    carrier=short,
    tracking_number=short,
    marketplace_id=short,
    marketplace_platform=short,
    external_link=st.text(max_size=2048),
    from_address=addresses,
    to_address=addresses,
    is_return=st.booleans(),
)
trackings = st.builds(
    Tracking,
    date=epoch,
    message=st.text(max_size=2048),
    city=short,
    code=st.integers(min_value=0, max_value=9999),
    est_delivery_date=epoch,
    first_status_date=epoch,
    late=st.booleans(),
)
label_urls = st.builds(
    lambda host, path: f"https://{host}.example/{path}",
    st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=20),
    st.text(alphabet=string.ascii_letters + string.digits + "-._~/?=&%", max_size=60),
)
events: st.SearchStrategy[AnyOrderEvent] = st.one_of(
    st.builds(TrackingUpdateEvent, event=st.just(EventType.TRACKING_UPDATE), order=orders, tracking=trackings),
    st.builds(
        OrderShippedEvent,
        event=st.just(EventType.ORDER_SHIPPED),
        order=orders,
        shipment=st.builds(Shipment, date=epoch, label_url=label_urls),
    ),
    st.builds(
        OrderErrorEvent,
        event=st.just(EventType.ORDER_ERROR),
        order=orders,
        error=st.builds(OrderError, date=epoch, message=st.text(min_size=1, max_size=2048)),
    ),
)


@given(events)
def test_any_event_body_is_its_payload_with_the_seed_value_types(event: AnyOrderEvent) -> None:
    """Whatever the order says, the body parses back to the payload and every value has the seed's type."""
    payload = wire_payload(event)
    body = wire_body(event)
    body.encode("utf-8")  # the request body is sent as UTF-8
    assert json.loads(body) == payload
    expected = EXPECTED_TYPES[event.event]
    assert {key: type(value) for key, value in payload.items()} == expected
    assert payload["OrderID"] == event.order.order_id
    assert payload["IsReturn"] == ("1" if event.order.is_return else "0")


# --- headers ---


BOX = SecretBox(parse_key(new_key()))
REVEAL = BOX.reveal_for("shop-a")


def _endpoint(**changes: object) -> Endpoint:
    """An endpoint as the registry keeps it: its credentials sealed by the API for account shop-a."""
    fields: dict[str, object] = {
        "id": "ep_1",
        "url": "https://shop.example.com/hooks/shippy",
        "events": ["ORDER_SHIPPED"],
        "auth": {"username": "user", "password": BOX.seal("pass", "shop-a", "auth.password")},
        "custom_header": {"key": "X-Shop-Token", "value": BOX.seal("abc123", "shop-a", "custom_header.value")},
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Endpoint.model_validate(fields | changes)


def test_request_headers_carry_json_type_delivery_id_basic_auth_and_the_custom_header() -> None:
    """Every POST: JSON content type, the delivery's `webhook-id`, Basic auth and the merchant's header."""
    endpoint = _endpoint()
    headers = request_headers(endpoint, REVEAL, "msg_42", "{}", NOW)
    stored = endpoint.model_dump_json()
    assert '"pass"' not in stored and "abc123" not in stored and '"ciphertext"' in stored
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-id"] == "msg_42"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"user:pass").decode()
    assert headers["Authorization"] == "Basic dXNlcjpwYXNz"
    assert headers["X-Shop-Token"] == "abc123"


def test_credentials_stored_in_clear_before_sealing_are_sent_as_they_are() -> None:
    """A registry written before sealing holds plain text: it still loads and is still sent."""
    legacy = _endpoint(
        auth={"username": "user", "password": "pass"}, custom_header={"key": "X-Shop-Token", "value": "abc123"}
    )
    assert request_headers(legacy, REVEAL, "msg_42", "{}", NOW) == request_headers(
        _endpoint(), REVEAL, "msg_42", "{}", NOW
    )


def test_without_auth_there_is_no_authorization_header() -> None:
    """Auth is optional: without it no Authorization header is sent at all."""
    headers = request_headers(_endpoint(auth=None, custom_header=None), REVEAL, "msg_1", "{}", NOW)
    assert not {name.lower() for name in headers} & {"authorization", "x-shop-token"}
    assert headers["webhook-id"] == "msg_1"


def test_masked_headers_hide_credentials_and_the_custom_value_and_keep_the_rest() -> None:
    """The log shows the headers sent, with the password and the custom header's value masked."""
    endpoint = _endpoint()
    shown = masked_headers(endpoint, request_headers(endpoint, REVEAL, "msg_42", "{}", NOW))
    assert shown["Authorization"] == "********"
    assert shown["X-Shop-Token"] == "********"
    assert shown["Content-Type"] == "application/json"
    assert shown["webhook-id"] == "msg_42"
    assert "abc123" not in json.dumps(shown) and "dXNlcjpwYXNz" not in json.dumps(shown)


def test_masking_ignores_the_case_of_header_names() -> None:
    """Header names are case-insensitive, so the mask is too."""
    shown = masked_headers(
        _endpoint(), {"authorization": "Basic x", "x-shop-token": "abc123", "X-SHOP-TOKEN": "abc123", "Accept": "*/*"}
    )
    assert shown == {
        "authorization": "********",
        "x-shop-token": "********",
        "X-SHOP-TOKEN": "********",
        "Accept": "*/*",
    }


def test_credentials_a_receiver_echoes_are_masked_whole_and_in_parts() -> None:
    """httpbin's /anything answers with the request it got: the log must not show its secrets."""
    endpoint = _endpoint(
        auth={"username": "user", "password": BOX.seal('pa"ss', "shop-a", "auth.password")},
    )
    sent = request_headers(endpoint, REVEAL, "msg_42", "{}", NOW)
    token = base64.b64encode(b'user:pa"ss').decode()
    echoed = json.dumps({"headers": {"Authorization": f"Basic {token}", "X-Shop-Token": "abc123"}, "pw": 'pa"ss'})

    masked = mask_echoes(echoed, echoed_credentials(endpoint, sent))

    for secret in (token, "abc123", 'pa\\"ss', "pa"):
        assert secret not in masked, secret
    assert json.loads(masked) == {
        "headers": {"Authorization": "********", "X-Shop-Token": "********"},
        "pw": "********",
    }
    plain = _endpoint(auth=None, custom_header=None)
    assert echoed_credentials(plain, request_headers(plain, REVEAL, "msg_42", "{}", NOW)) == []


def test_a_bearer_token_in_a_custom_authorization_header_is_masked_alone_too() -> None:
    endpoint = _endpoint(auth=None, custom_header={"key": "Authorization", "value": "Bearer tok_abcdef123"})
    sent = request_headers(endpoint, REVEAL, "msg_42", "{}", NOW)
    echoed = '{"error": "token tok_abcdef123 expired"}'
    assert mask_echoes(echoed, echoed_credentials(endpoint, sent)) == '{"error": "token ******** expired"}'


def test_a_short_credential_is_masked_only_where_it_stands_whole() -> None:
    """Masking "1" everywhere would garble every number and show where the password was."""
    endpoint = _endpoint(auth={"username": "u", "password": BOX.seal("1", "shop-a", "auth.password")})
    credentials = echoed_credentials(endpoint, request_headers(endpoint, REVEAL, "msg_42", "{}", NOW))
    assert mask_echoes('{"order": 12345, "ok": 1, "password": "1"}', credentials) == (
        '{"order": 12345, "ok": 1, "password": "********"}'
    )
    assert mask_echoes("1", credentials) == "********"
