"""`/v1/events` and the service routes over real HTTP (CONTRACT §2, §6)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr, TypeAdapter
from temporalio.client import Client

from api.app import create_app
from domain.delivery import DEFAULT_ACCOUNT, DeliveryInput, event_deliveries
from domain.events import OrderEvent
from domain.ids import event_delivery_id, first_connection_id
from infra.temporal import or_none
from services.deliveries import start_delivery
from services.endpoints import EndpointRegistry
from services.ingest import ACCEPTED_EVENT_MEMO
from settings import Settings
from tests.conftest import free_port
from tests.integration.helpers import create_endpoint, delivery_outcome, list_ids, post_event, tracking_event
from tests.receiver import BackgroundServer
from tests.waiting import eventually


async def planned(client: Client, settings: Settings, event: dict[str, Any]) -> tuple[OrderEvent, list[DeliveryInput]]:
    """The event as ingest reads it, and the deliveries it would start for it now."""
    accepted = TypeAdapter(OrderEvent).validate_python(event)
    snapshot = await EndpointRegistry(client, settings.task_queue, DEFAULT_ACCOUNT).snapshot()
    assert snapshot is not None
    return accepted, event_deliveries(DEFAULT_ACCOUNT, accepted, snapshot.subscriptions(accepted.event))


async def test_posting_the_same_event_id_again_never_delivers_twice(api, client, receiver):
    url = receiver.url()
    endpoint = await create_endpoint(api, url)
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    event = tracking_event()

    first = await post_event(api, event)
    again = await post_event(api, event)
    await delivery_outcome(client, first["deliveries"][0]["id"])
    # An endpoint created in between does not change what the id already named.
    later_url = receiver.url()
    later = await create_endpoint(api, later_url)
    third = await post_event(api, event)

    assert first == again == third
    assert first["id"] == event["id"]
    # The later endpoint would have been the event's delivery 1; a post starts its deliveries before
    # answering, so had the third post started one for it, it would exist by now.
    assert await _exists(client, event_delivery_id(DEFAULT_ACCOUNT, event["id"], 1)) is False
    assert len(receiver.requests(url)) == 2  # first connection + one delivery
    await delivery_outcome(client, first_connection_id(later["id"]))
    assert [r.headers["webhook-id"] for r in receiver.requests(later_url)] == [first_connection_id(later["id"])]


async def test_the_same_id_with_another_body_is_a_conflict(api, receiver):
    await create_endpoint(api, receiver.url())
    event = tracking_event()
    await post_event(api, event)

    changed = await api.post("/v1/events", json=event | {"order": event["order"] | {"carrier": "DHL"}})

    assert changed.status_code == 409
    assert "id" in changed.json()["detail"]


async def _first_connections_ended(client: Client, endpoints: list[dict[str, Any]]) -> None:
    """Counting what a receiver got includes each endpoint's first connection: wait for it too."""
    for endpoint in endpoints:
        await delivery_outcome(client, first_connection_id(endpoint["id"]))


async def test_a_repost_starts_the_deliveries_an_interrupted_first_post_left(api, client, settings, receiver):
    urls = [receiver.url(), receiver.url()]
    endpoints = [await create_endpoint(api, url) for url in urls]
    event = tracking_event()
    # What an API killed between its starts leaves: delivery 0, with the acceptance, and nothing else.
    accepted, (first, second) = await planned(client, settings, event)
    memo = {ACCEPTED_EVENT_MEMO: {"fingerprint": accepted.fingerprint(), "endpoint_ids": [e["id"] for e in endpoints]}}
    await start_delivery(client, settings.task_queue, first, memo=memo)

    again = await post_event(api, event)

    assert [d["endpoint_id"] for d in again["deliveries"]] == [e["id"] for e in endpoints]
    assert [d["id"] for d in again["deliveries"]] == [first.delivery_id, second.delivery_id]
    for delivery in again["deliveries"]:
        assert (await delivery_outcome(client, delivery["id"])).result == "success"
    # One first connection and one event delivery per endpoint: nothing twice.
    await _first_connections_ended(client, endpoints)
    assert [len(receiver.requests(url)) for url in urls] == [2, 2]


async def test_a_post_that_finds_a_later_delivery_started_still_answers_202(api, client, settings, receiver):
    urls = [receiver.url(), receiver.url()]
    endpoints = [await create_endpoint(api, url) for url in urls]
    event = tracking_event()
    # What a concurrent post of the same id can leave while this one starts delivery 0: delivery 1 started.
    _, (first, second) = await planned(client, settings, event)
    await start_delivery(client, settings.task_queue, second)

    answer = await api.post("/v1/events", json=event)

    assert answer.status_code == 202, answer.text
    assert [d["id"] for d in answer.json()["deliveries"]] == [first.delivery_id, second.delivery_id]
    assert [d["endpoint_id"] for d in answer.json()["deliveries"]] == [e["id"] for e in endpoints]
    for delivery in answer.json()["deliveries"]:
        assert (await delivery_outcome(client, delivery["id"])).result == "success"
    await _first_connections_ended(client, endpoints)
    assert [len(receiver.requests(url)) for url in urls] == [2, 2]  # first connection + one delivery each


async def test_an_id_another_kind_of_delivery_holds_is_a_conflict_not_a_500(api, client, settings, receiver):
    await create_endpoint(api, receiver.url())
    event = tracking_event()
    # Delivery 0 of this id, started without an event's acceptance (as a notice's delivery is).
    _, (first,) = await planned(client, settings, event)
    await start_delivery(client, settings.task_queue, first)

    answer = await api.post("/v1/events", json=event)

    assert answer.status_code == 409, answer.text
    assert [p["field"] for p in answer.json()["errors"]] == ["id"]
    assert event["id"] not in answer.text


async def test_an_event_cannot_take_a_notice_id(api):
    answer = await api.post("/v1/events", json=tracking_event() | {"id": "delivery_failed-0123456789abcdef01234567"})

    assert answer.status_code == 422
    assert [p["field"] for p in answer.json()["errors"]] == ["id"]
    assert "delivery_failed-0123" not in answer.text


async def test_order_fields_the_log_filters_on_refuse_control_characters(api, receiver):
    """They are indexed for the log's filters, which refuse them; a NUL breaks visibility stores."""
    await create_endpoint(api, receiver.url())
    event = tracking_event()
    order = event["order"] | {"order_id": "24957298\x00", "carrier": "FedEx\x1b[0m"}

    answer = await api.post("/v1/events", json=event | {"order": order})

    assert answer.status_code == 422, answer.text
    assert [p["field"] for p in answer.json()["errors"]] == ["order.order_id", "order.carrier"]
    # Nothing was accepted under the id: the event as it should be is new, not a conflict.
    assert (await api.post("/v1/events", json=event)).status_code == 202


async def test_order_fields_the_log_filters_on_refuse_what_its_store_cannot_find(api, client, receiver):
    """The SQL visibility store finds no value with a double quote, nor a backslash before a
    quote or at the end: accepted, such an order could never be found by its filter."""
    await create_endpoint(api, receiver.url())
    event = tracking_event()
    order = event["order"] | {"order_id": 'q3"b', "transaction_id": "48572\\", "carrier": "Fed\\Ex"}

    answer = await api.post("/v1/events", json=event | {"order": order})

    assert answer.status_code == 422, answer.text
    assert [(p["field"], p["message"]) for p in answer.json()["errors"]] == [
        (f"order.{name}", 'must not contain " or \\ (the log could not be filtered by it)')
        for name in ("order_id", "transaction_id", "carrier")
    ]
    # What it accepts, it finds: quotes, wildcards and spaces of the filter's language included.
    findable = "o'k %_* 1"
    accepted = await post_event(api, tracking_event(order_id=findable))
    await delivery_outcome(client, accepted["deliveries"][0]["id"])
    await eventually(lambda: list_ids(api, order_id=findable), lambda ids: ids == [accepted["deliveries"][0]["id"]])


async def test_a_conflicting_repost_starts_nothing(api, client, receiver):
    url = receiver.url()
    await create_endpoint(api, url)
    event = tracking_event()
    first = await post_event(api, event)
    await delivery_outcome(client, first["deliveries"][0]["id"])
    await create_endpoint(api, receiver.url())  # a new subscriber would get a delivery, were one started

    changed = await api.post("/v1/events", json=event | {"order": event["order"] | {"carrier": "DHL"}})

    assert changed.status_code == 409
    # The new subscriber's delivery would be the event's delivery 1, started before any answer:
    # Temporal itself (not its search index, which lags) says whether it exists.
    assert await _exists(client, first["deliveries"][0]["id"]) is True
    assert await _exists(client, event_delivery_id(DEFAULT_ACCOUNT, event["id"], 1)) is False


async def _exists(client: Client, workflow_id: str) -> bool:
    """Whether a workflow of this id was ever started (and not yet past retention): asked of
    Temporal itself, which knows at once, unlike its search index."""
    return await or_none(client.get_workflow_handle(workflow_id).describe()) is not None


async def test_an_event_without_id_gets_one_and_no_subscriber_means_no_delivery(api):
    event = tracking_event()
    del event["id"]

    response = await api.post("/v1/events", json=event)

    assert response.status_code == 202
    assert response.json()["id"].startswith("evt_")
    assert response.json()["deliveries"] == []


async def test_a_bad_event_is_a_422_naming_the_field(api, receiver):
    await create_endpoint(api, receiver.url())
    missing_tracking = tracking_event()
    del missing_tracking["tracking"]
    cases = [
        (tracking_event() | {"event": "ORDER_LOST"}, "event"),
        (missing_tracking, "tracking"),
        (tracking_event() | {"shipment": {"date": 1, "label_url": "https://x.example/l"}}, "shipment"),
        (tracking_event(event_id="has/slash"), "id"),
        (tracking_event() | {"tracking": {"date": "yesterday", "code": 6}}, "tracking.date"),
    ]
    for body, field in cases:
        response = await api.post("/v1/events", json=body)
        assert response.status_code == 422, response.text
        assert field in [p["field"] for p in response.json()["errors"]], response.text

    malformed = await api.post("/v1/events", content=b"{not json", headers={"content-type": "application/json"})
    assert malformed.status_code == 422


async def test_health_and_openapi(api):
    health = await api.get("/healthz")
    openapi = await api.get("/openapi.json")

    assert health.status_code == 200
    assert {"/v1/endpoints", "/v1/events", "/v1/endpoints/{endpoint_id}/test"} <= set(openapi.json()["paths"])
    assert (await api.get("/docs")).status_code == 200


async def test_health_is_503_when_temporal_is_unreachable(settings):
    unreachable = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with (
        BackgroundServer(create_app(unreachable), free_port()) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        response = await http.get("/healthz")

    assert response.status_code == 503


async def test_a_configured_token_is_required_on_every_v1_route(settings, worker):
    guarded = settings.model_copy(update={"api_token": SecretStr("t0ken")})
    async with (
        BackgroundServer(create_app(guarded), free_port()) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        routes = [
            ("GET", "/v1/endpoints"),
            ("POST", "/v1/events"),
            ("GET", "/v1/endpoints/x"),
            ("DELETE", "/v1/endpoints/x"),
        ]
        for method, path in routes:
            assert (await http.request(method, path)).status_code == 401
            wrong = await http.request(method, path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
        allowed = await http.get("/v1/endpoints", headers={"Authorization": "Bearer t0ken"})
        health = await http.get("/healthz")

    assert allowed.status_code == 200
    assert health.status_code == 200  # health stays open for load balancers
