"""What a receiver gets, and how its answer is judged: real worker, real Temporal, real HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from domain.ids import first_connection_id
from domain.outcome import NOT_JSON
from tests.conftest import free_port
from tests.contract import CONTRACT_ORDER
from tests.integration.helpers import create_endpoint, delivery_outcome, post_event, tracking_event
from tests.receiver import NO_CONTENT, Reply, error

# CONTRACT §3, key for key, in the seed's order and with its value types.
EXPECTED_TRACKING_BODY = (
    '{"Event":"TRACKING_UPDATE","tracking":"WZ116539070","date":1622671204,'
    '"message":"Shipment delivered","city":"Florence","est_delivery_date":"0",'
    '"first_status_date":"1622152801","late":"0","code":6,'
    '"OrderID":"24957298","TransactionID":"48572_1","TrackingCarrier":"FedEx",'
    '"MarketplaceID":"0","MarketplacePlatform":"Manual shipment","ExternalLink":"",'
    '"FromAddressCompany":"John Doe srl.","ToAddressCompany":"",'
    '"FromAddressCountry":"IT","ToAddressCountry":"IT","IsReturn":"0"}'
)

ORDER_KEYS = [
    "OrderID",
    "TransactionID",
    "TrackingCarrier",
    "MarketplaceID",
    "MarketplacePlatform",
    "ExternalLink",
    "FromAddressCompany",
    "ToAddressCompany",
    "FromAddressCountry",
    "ToAddressCountry",
    "IsReturn",
]


async def _deliver(api, client, receiver, event, *replies: Reply, **endpoint_fields):
    """Register an endpoint, post `event`, and return (record, requests of the event's delivery)."""
    url = receiver.url(*replies) if replies else receiver.url()
    endpoint = await create_endpoint(api, url, **endpoint_fields)
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    accepted = await post_event(api, event)
    [delivery] = [d for d in accepted["deliveries"] if d["endpoint_id"] == endpoint["id"]]
    record = await delivery_outcome(client, delivery["id"])
    requests = [r for r in receiver.requests(url) if r.headers["webhook-id"] == delivery["id"]]
    return record, requests


async def test_tracking_update_body_is_the_contract_byte_for_byte(api, client, receiver):
    record, [request] = await _deliver(api, client, receiver, tracking_event())

    assert request.method == "POST"
    assert request.body == EXPECTED_TRACKING_BODY.encode()
    assert request.headers["content-type"] == "application/json"
    assert record.result == "success"
    assert record.request is not None and record.request.body == EXPECTED_TRACKING_BODY


async def test_date_and_date_end_bound_every_attempt(api, client, receiver):
    """The seed's Date / Date End: a first attempt runs inside the workflow task whose clock
    reads when the task began, before the POST; the record ends after it all the same."""
    record, _ = await _deliver(api, client, receiver, tracking_event())
    detail = (await api.get(f"/v1/deliveries/{record.id}")).json()

    [attempt] = detail["attempts"]
    started = datetime.fromisoformat(attempt["started_at"])
    assert datetime.fromisoformat(detail["date"]) <= started
    assert datetime.fromisoformat(detail["date_end"]) >= started + timedelta(milliseconds=attempt["duration_ms"])


async def test_order_shipped_and_order_error_carry_their_fields_and_the_order_keys(api, client, receiver):
    shipped = {
        "event": "ORDER_SHIPPED",
        "order": CONTRACT_ORDER,
        "shipment": {"date": 1622152801, "label_url": "https://labels.example.com/l.pdf?x=1"},
    }
    failed = {"event": "ORDER_ERROR", "order": CONTRACT_ORDER, "error": {"date": 1622152900, "message": "Bad address"}}

    _, [shipped_request] = await _deliver(api, client, receiver, shipped)
    _, [error_request] = await _deliver(api, client, receiver, failed)

    shipped_body = json.loads(shipped_request.body)
    assert list(shipped_body) == ["Event", "tracking", "date", "LabelURL", *ORDER_KEYS]
    assert shipped_body["LabelURL"] == "https://labels.example.com/l.pdf?x=1"
    assert shipped_body["date"] == 1622152801 and shipped_body["tracking"] == "WZ116539070"
    error_body = json.loads(error_request.body)
    assert list(error_body) == ["Event", "tracking", "date", "Error", *ORDER_KEYS]
    assert error_body["Error"] == "Bad address" and error_body["Event"] == "ORDER_ERROR"


async def test_returns_go_through_the_same_pipeline(api, client, receiver):
    record, [request] = await _deliver(api, client, receiver, tracking_event(is_return=True))

    assert record.result == "success"
    assert json.loads(request.body)["IsReturn"] == "1"


async def test_basic_auth_custom_header_and_webhook_id_are_sent(api, client, receiver):
    record, [request] = await _deliver(
        api,
        client,
        receiver,
        tracking_event(),
        auth={"username": "shop", "password": "s3cret"},
        custom_header={"key": "X-Shop-Token", "value": "shop-tok-Q7"},
    )

    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"shop:s3cret").decode()
    assert request.headers["x-shop-token"] == "shop-tok-Q7"
    assert request.headers["webhook-id"] == record.id
    # The log shows that they were sent, never what they were.
    assert record.request is not None
    assert record.request.headers["Authorization"] == "********"
    assert record.request.headers["X-Shop-Token"] == "********"
    assert "s3cret" not in record.model_dump_json() and "shop-tok-Q7" not in record.model_dump_json()
    # Every header that went out is in the log, those the HTTP client adds too.
    assert {name.lower() for name in record.request.headers} == set(request.headers)
    assert record.request.headers["Content-Length"] == request.headers["content-length"]


@pytest.mark.parametrize(
    ("reply", "result", "error"),
    [
        (Reply(headers=(("content-type", "application/json; charset=utf-8"),)), "success", None),
        (NO_CONTENT, "success", None),
        (Reply(status=204, body=b"<html>ignored</html>", headers=(("content-type", "text/html"),)), "success", None),
        (Reply(body=b"<html>ok</html>", headers=(("content-type", "text/html"),)), "failed", NOT_JSON),
        (Reply(body=b"{broken"), "failed", NOT_JSON),
        (error(500), "failed", "HTTP response code is 500 (Internal Server Error), it must be 200"),
        (error(444), "failed", "HTTP response code is 444 (Connection Closed Without Response), it must be 200"),
    ],
    ids=["json-charset", "204-empty", "204-html", "200-html", "200-broken-json", "500", "444"],
)
async def test_the_seeds_rule_decides_the_result(api, client, receiver, reply, result, error):
    record, requests = await _deliver(api, client, receiver, tracking_event(), reply)

    assert len(requests) == 1  # retry is off by default
    assert record.result == result
    assert record.error == error
    assert record.response is not None and record.response.status_code == reply.status


async def test_redirects_are_not_followed(api, client, receiver):
    target = receiver.url()
    record, [_] = await _deliver(
        api, client, receiver, tracking_event(), Reply(status=302, body=b"", headers=(("location", target),))
    )

    assert record.error == "HTTP response code is 302 (Found), it must be 200"
    assert record.response is not None and record.response.status_text == "302 Found"
    assert receiver.requests(target) == []


async def test_a_closed_port_is_unreachable_with_its_cause(api, client):
    url = f"http://127.0.0.1:{free_port()}/hooks"
    endpoint = await create_endpoint(api, url)

    record = await delivery_outcome(client, first_connection_id(endpoint["id"]))

    assert record.result == "failed"
    assert record.response is None
    assert record.error == "Endpoint unreachable: could not connect (Connection refused)"


async def test_a_receiver_slower_than_the_timeout_fails_in_bounded_time(api, client, receiver, settings):
    record, requests = await _deliver(api, client, receiver, tracking_event(), Reply(delay=settings.http_timeout + 2))

    assert len(requests) == 1
    assert record.error == f"Endpoint unreachable: no response within {settings.http_timeout:g}s"
    assert record.time_spent_ms is not None and record.time_spent_ms < (settings.http_timeout + 1) * 1000


@pytest.mark.parametrize("cancelled_in", ["the first attempt", "a retry"])
async def test_a_delivery_cancelled_during_an_attempt_ends_cancelled_and_posts_no_more(
    api, client, receiver, cancelled_in
):
    """The Web UI's Cancel on a delivery stops it as cancelled: one during a retry ended it
    failed, "lost with their workers" (a cancel during the local first attempt already ended
    the run cancelled; this keeps it so)."""
    url = receiver.url()
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 3})
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    answer = asyncio.Event()
    earlier = [error(500)] if cancelled_in == "a retry" else []
    receiver.script(url, *earlier, Reply(status=500, answer_when=answer), error(500))
    delivery_id = (await post_event(api, tracking_event()))["deliveries"][0]["id"]
    posts = 2 + len(earlier)  # the first connection's, then the delivery's up to the held one
    await receiver.wait_for(url, posts)

    handle = client.get_workflow_handle(delivery_id)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as ended:
        await handle.result()
    answer.set()

    assert isinstance(ended.value.cause, CancelledError)
    assert len(receiver.requests(url)) == posts
    shown = await api.get(f"/v1/deliveries/{delivery_id}")
    assert shown.json()["result"] == "failed", shown.text  # not delivered, as a terminated run
