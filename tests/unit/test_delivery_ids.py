"""How an event's deliveries are named: an order event's by their place in the subscriptions
its acceptance recorded, and so the registry workflow's ENDPOINT_DISABLED notice's (child ids
are commands: released histories replay only with them unchanged); a notice an activity raises,
by endpoint, since nothing records its subscribers."""

from __future__ import annotations

from pydantic import TypeAdapter

from domain.delivery import event_deliveries, notice_deliveries
from domain.endpoints import RetrySettings, Subscription
from domain.events import EventType, OrderEvent
from domain.ids import event_delivery_id, first_connection_id, first_of_chain, recovered_id, rerun_id
from domain.notices import EndpointDisabledNotice, notice_id
from tests.contract import CONTRACT_EVENT


def _subscribers(*endpoint_ids: str) -> list[Subscription]:
    return [Subscription(endpoint_id=e, url=f"https://{e}.example/hooks", retry=RetrySettings()) for e in endpoint_ids]


def _notice() -> EndpointDisabledNotice:
    return EndpointDisabledNotice(
        id=notice_id(EventType.ENDPOINT_DISABLED, "ep_gone"),
        event=EventType.ENDPOINT_DISABLED,
        endpoint_id="ep_gone",
        endpoint_url="https://gone.example/hooks",
        date=1622671204,
        reason="the receiver answered 410 Gone",
    )


def test_a_notice_names_each_delivery_by_its_endpoint_whatever_the_other_subscribers() -> None:
    """A notice's activity, retried after a subscriber was deleted, lists the others again: named
    by place, the last one took the deleted one's id, found it started and never got its own."""
    first = {d.endpoint_id: d.delivery_id for d in notice_deliveries("default", _notice(), _subscribers("a", "b", "c"))}
    retried = {d.endpoint_id: d.delivery_id for d in notice_deliveries("default", _notice(), _subscribers("a", "c"))}

    assert retried == {"a": first["a"], "c": first["c"]}
    assert first["c"] == f"delivery/default/{_notice().id}/c"


def test_an_order_events_deliveries_are_numbered_in_the_subscriptions_order() -> None:
    event = TypeAdapter(OrderEvent).validate_python(CONTRACT_EVENT)
    deliveries = event_deliveries("default", event, _subscribers("a", "b"))

    assert [(d.endpoint_id, d.delivery_id) for d in deliveries] == [
        ("a", f"delivery/default/{event.id}/0"),
        ("b", f"delivery/default/{event.id}/1"),
    ]


def test_the_registrys_endpoint_disabled_notices_stay_numbered() -> None:
    deliveries = event_deliveries("default", _notice(), _subscribers("a", "b"))

    assert [d.delivery_id for d in deliveries] == [f"delivery/default/{_notice().id}/{n}" for n in (0, 1)]


def test_a_re_run_of_a_re_run_is_named_under_the_first_delivery_so_chains_do_not_lengthen_ids() -> None:
    first = event_delivery_id("default", "evt-1999-01-01T00:00:00Z", 0)
    chain = first
    for n in range(100):
        chain = rerun_id(recovered_id(chain) if n % 10 == 9 else chain, f"{n:08x}")
    assert chain == f"{first}/rerun-00000063"
    assert first_of_chain(f"{first_connection_id('ep_1')}/rerun-ab12cd34/recovered") == first_connection_id("ep_1")
