"""What a service may post to `POST /v1/events`, and when two posts are the same event (CONTRACT §2)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.events import EventType, OrderErrorEvent, OrderEvent, OrderShippedEvent, TrackingUpdateEvent
from domain.notices import notice_id
from domain.problems import field_errors
from tests.contract import CONTRACT_EVENT

EVENTS: TypeAdapter[OrderShippedEvent | OrderErrorEvent | TrackingUpdateEvent] = TypeAdapter(OrderEvent)

SHIPPED: dict[str, Any] = {
    "id": "evt-1",
    "event": "ORDER_SHIPPED",
    "order": {"order_id": "24957298"},
    "shipment": {"date": 1622152801, "label_url": "https://labels.example.com/1.pdf"},
}
ERROR: dict[str, Any] = {
    "event": "ORDER_ERROR",
    "order": {"order_id": "24957298"},
    "error": {"date": 1622152801, "message": "Address not found"},
}


def rejected_fields(data: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as exc:
        EVENTS.validate_python(data)
    return {p["field"] for p in field_errors(exc.value.errors())}


def test_the_contract_example_is_a_tracking_update() -> None:
    event = EVENTS.validate_python(CONTRACT_EVENT)
    assert isinstance(event, TrackingUpdateEvent)
    assert event.id == "evt-2021-06-02-000123"
    assert event.order.from_address.company == "John Doe srl."
    assert (event.tracking.code, event.tracking.late) == (6, False)


def test_each_event_type_is_read_with_its_own_part() -> None:
    """ORDER_SHIPPED carries a shipment, ORDER_ERROR an error; the id is optional."""
    shipped = EVENTS.validate_python(SHIPPED)
    assert isinstance(shipped, OrderShippedEvent)
    assert shipped.shipment.label_url == "https://labels.example.com/1.pdf"
    failed = EVENTS.validate_python(ERROR)
    assert isinstance(failed, OrderErrorEvent) and failed.id is None
    assert failed.error.message == "Address not found"


def test_a_return_is_accepted_like_any_order() -> None:
    data = copy.deepcopy(CONTRACT_EVENT)
    data["order"]["is_return"] = True
    assert EVENTS.validate_python(data).order.is_return is True


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({k: v for k, v in SHIPPED.items() if k != "shipment"}, "shipment"),
        ({k: v for k, v in ERROR.items() if k != "error"}, "error"),
        ({k: v for k, v in CONTRACT_EVENT.items() if k != "tracking"}, "tracking"),
        ({k: v for k, v in CONTRACT_EVENT.items() if k != "order"}, "order"),
    ],
)
def test_an_event_without_its_part_is_rejected_naming_it(data: dict[str, Any], field: str) -> None:
    assert rejected_fields(data) == {field}


def test_an_unknown_event_type_is_rejected_naming_event() -> None:
    assert rejected_fields(CONTRACT_EVENT | {"event": "ORDER_LOST"}) == {"event"}


@pytest.mark.parametrize("kind", ["DELIVERY_FAILED", "ENDPOINT_DISABLED", "PARCEL_LOST"])
def test_an_event_type_no_one_may_post_is_refused_listing_only_those_one_may(kind: str) -> None:
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(OrderEvent).validate_python(copy.deepcopy(CONTRACT_EVENT) | {"event": kind})
    assert field_errors(refused.value.errors()) == [
        {"field": "event", "message": "must be one of ORDER_ERROR, ORDER_SHIPPED, TRACKING_UPDATE"}
    ]


def test_unknown_fields_are_rejected_not_dropped() -> None:
    """A field we would not deliver is a mistake in the sender's integration. A name of ours in
    the wrong place is named; any other key is not repeated (it could be a secret): its object is."""
    assert rejected_fields(CONTRACT_EVENT | {"priority": "high"}) == {"body"}
    nested = copy.deepcopy(CONTRACT_EVENT)
    nested["order"]["weight"] = 3
    assert rejected_fields(nested) == {"order"}
    assert rejected_fields(SHIPPED | {"tracking": CONTRACT_EVENT["tracking"]}) == {"tracking"}


def test_an_unknown_field_named_like_a_secret_is_not_echoed() -> None:
    with pytest.raises(ValidationError) as exc:
        EVENTS.validate_python(CONTRACT_EVENT | {"PW-7f3a9c-secret": 1})
    [problem] = field_errors(exc.value.errors())
    assert problem["field"] == "body" and "not allowed" in problem["message"]
    assert "PW-7f3a9c" not in repr(problem)


def test_a_label_url_must_be_an_http_url() -> None:
    data = copy.deepcopy(SHIPPED)
    data["shipment"]["label_url"] = "ftp://labels.example.com/1.pdf"
    assert rejected_fields(data) == {"shipment.label_url"}


@pytest.mark.parametrize(
    "event_id", ["a/b", "evt 1", " evt", "evt-1\n", "-evt", "", "é", "a" * 129, "a" * 200, "evt?x=1"]
)
def test_an_id_that_is_not_a_safe_key_is_rejected(event_id: str) -> None:
    """Idempotency keys: letters, digits and . _ : - , at most 128 characters."""
    assert rejected_fields(CONTRACT_EVENT | {"id": event_id}) == {"id"}


@pytest.mark.parametrize("event_id", ["1", "evt-2021-06-02-000123", "shop.ord_1:retry-2", "a" * 128])
def test_a_safe_id_is_accepted(event_id: str) -> None:
    assert EVENTS.validate_python(CONTRACT_EVENT | {"id": event_id}).id == event_id


@pytest.mark.parametrize("kind", [EventType.DELIVERY_FAILED, EventType.ENDPOINT_DISABLED])
def test_an_id_shaped_like_a_notice_id_is_rejected(kind: EventType) -> None:
    """The service's notices are events with ids of their own; a posted event cannot take one."""
    taken = notice_id(kind, "delivery/default/evt-1/0")
    with pytest.raises(ValidationError) as refused:
        EVENTS.validate_python(CONTRACT_EVENT | {"id": taken})

    [problem] = field_errors(refused.value.errors())
    assert problem["field"] == "id" and "notices" in problem["message"] and taken not in problem["message"]
    assert EVENTS.validate_python(CONTRACT_EVENT | {"id": taken.upper()}).id == taken.upper()  # ids are case-sensitive


NUMBERS = [
    ("tracking", "code", 0, 9999),
    ("tracking", "date", 0, 253402300799),
    ("tracking", "est_delivery_date", 0, 253402300799),
    ("tracking", "first_status_date", 0, 253402300799),
]


@pytest.mark.parametrize(("part", "name", "low", "high"), NUMBERS)
def test_every_number_of_an_event_has_documented_bounds(part: str, name: str, low: int, high: int) -> None:
    """Issue 13: tracking.code took a 4,000-digit integer."""
    for value in (low, high):
        data = copy.deepcopy(CONTRACT_EVENT)
        data[part][name] = value
        assert getattr(getattr(EVENTS.validate_python(data), part), name) == value
    for value in (low - 1, high + 1, 10**4000):
        data = copy.deepcopy(CONTRACT_EVENT)
        data[part][name] = value
        assert rejected_fields(data) == {f"{part}.{name}"}


@pytest.mark.parametrize(("data", "field"), [(SHIPPED, "shipment"), (ERROR, "error")])
def test_dates_of_shipments_and_errors_are_bounded_too(data: dict[str, Any], field: str) -> None:
    bad = copy.deepcopy(data)
    bad[field]["date"] = 253402300800  # year 10000
    assert rejected_fields(bad) == {f"{field}.date"}


# --- fingerprint: same id with another body is a conflict ---


def _leaves(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key)


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return f"{value}x"


LEAVES = [path for path in _leaves(CONTRACT_EVENT) if path not in {("id",), ("event",)}]


def _fingerprint(data: dict[str, Any]) -> str:
    return EVENTS.validate_python(data).fingerprint()


def test_the_fingerprint_ignores_the_id() -> None:
    assert _fingerprint(CONTRACT_EVENT) == _fingerprint(CONTRACT_EVENT | {"id": "another-id"})
    assert _fingerprint(CONTRACT_EVENT) == _fingerprint({k: v for k, v in CONTRACT_EVENT.items() if k != "id"})


@pytest.mark.parametrize("path", LEAVES, ids=[".".join(p) for p in LEAVES])
def test_the_fingerprint_changes_with_every_other_field(path: tuple[str, ...]) -> None:
    """Any change of the body under the same id is detected (and answered with a 409)."""
    data = copy.deepcopy(CONTRACT_EVENT)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = _changed(target[path[-1]])
    assert _fingerprint(data) != _fingerprint(CONTRACT_EVENT)


def test_the_fingerprint_tells_event_types_apart() -> None:
    same_order = {"order": {"order_id": "1"}}
    shipped = SHIPPED | same_order | {"id": None}
    failed = ERROR | same_order
    assert _fingerprint(shipped) != _fingerprint(failed)


def test_the_fingerprint_does_not_depend_on_key_order_or_spelled_out_defaults() -> None:
    """The same event posted twice, written differently, is still the same event."""
    reordered = dict(reversed(list(CONTRACT_EVENT.items())))
    assert _fingerprint(reordered) == _fingerprint(CONTRACT_EVENT)
    explicit = copy.deepcopy(SHIPPED)
    explicit["order"] |= {"marketplace_id": "0", "is_return": False, "from_address": {"company": "", "country": ""}}
    assert _fingerprint(explicit) == _fingerprint(SHIPPED)


@pytest.mark.parametrize(
    ("part", "name", "text"),
    [
        ("error", "date", "1622152900"),
        ("order", "is_return", "true"),
        ("order", "is_return", 1),
        ("tracking", "late", "0"),
        ("tracking", "code", "6"),
    ],
)
def test_numbers_and_flags_are_taken_as_json_types_not_as_text(part: str, name: str, text: Any) -> None:
    """Lax parsing would read "1622152900" as a date and 1 or "true" as a flag: refused instead,
    as `retry.max_retries` always was, naming the field."""
    data = copy.deepcopy(ERROR if part == "error" else CONTRACT_EVENT)
    data[part] = data[part] | {name: text}
    assert rejected_fields(data) == {f"{part}.{name}"}
