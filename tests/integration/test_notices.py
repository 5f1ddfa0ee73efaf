"""Operational events (CONTRACT §11): DELIVERY_FAILED and ENDPOINT_DISABLED, to the account's other subscribers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from domain.events import EventType
from domain.ids import first_connection_id, notice_delivery_id
from domain.notices import notice_id
from tests.integration.helpers import create_endpoint, delivery_outcome
from tests.integration.stacks import post_events, ready_endpoint, stack
from tests.receiver import OK, Receiver, error
from tests.waiting import eventually

FAILED_WATCHER = {"events": ["DELIVERY_FAILED"]}
DISABLED_WATCHER = {"events": ["ENDPOINT_DISABLED"]}


def bodies(receiver: Receiver, url: str, event: str) -> list[dict[str, Any]]:
    found = [json.loads(r.body) for r in receiver.requests(url)]
    return [b for b in found if b.get("Event") == event]


async def test_a_failed_delivery_is_announced_to_the_other_subscribers_with_its_body(client, settings, receiver):
    failing = receiver.url(OK, error(500))
    watcher = receiver.url(OK)
    broken_watcher = receiver.url(OK, error(500))
    async with stack(client, settings) as api:
        source = await ready_endpoint(
            api,
            client,
            failing,
            events=["TRACKING_UPDATE", "DELIVERY_FAILED"],
            retry={"enabled": True, "max_retries": 1},
        )
        await ready_endpoint(api, client, watcher, **FAILED_WATCHER)
        broken = await ready_endpoint(api, client, broken_watcher, **FAILED_WATCHER)
        [failed_id] = await post_events(api, 1)
        failed = await delivery_outcome(client, failed_id)
        [notice] = await eventually(
            lambda: _bodies(receiver, watcher, "DELIVERY_FAILED"), lambda b: len(b) == 1, what="the notice"
        )
        # The broken watcher's notice fails after its retries; wait for that end, then for the log.
        [broken_notice] = await eventually(
            lambda: _ids(api, event="DELIVERY_FAILED", endpoint_id=broken["id"]), lambda ids: len(ids) == 1
        )
        assert (await delivery_outcome(client, broken_notice)).result == "failed"
        logged = await eventually(lambda: _ids(api, event="DELIVERY_FAILED"), lambda ids: len(ids) == 2)

    sent = json.loads(receiver.requests(failing)[-1].body)
    assert failed.result == "failed"
    assert notice == {
        "Event": "DELIVERY_FAILED",
        "DeliveryID": failed_id,
        "EndpointID": source["id"],
        "EndpointURL": failing,
        "OrderID": sent["OrderID"],
        "Error": "HTTP response code is 500 (Internal Server Error), it must be 200",
        "Retries": 1,
        "date": notice["date"],
        "Payload": sent,
    }
    assert bodies(receiver, failing, "DELIVERY_FAILED") == []  # never to the endpoint concerned
    # The broken watcher's own failed notice raised no further one: the watcher got exactly one.
    assert len(bodies(receiver, watcher, "DELIVERY_FAILED")) == 1
    assert broken_notice in logged


async def test_a_re_run_of_a_test_raises_no_notice_and_a_re_run_of_an_event_does(client, settings, receiver):
    failing = receiver.url(error(500))
    watcher = receiver.url(OK)
    async with stack(client, settings) as api:
        source = await ready_endpoint(api, client, failing, retry={"enabled": False, "max_retries": 0})
        watcher_id = (await ready_endpoint(api, client, watcher, **FAILED_WATCHER))["id"]
        tested = (await api.post(f"/v1/endpoints/{source['id']}/test")).json()
        assert tested["result"] == "failed"
        [failed_id] = await post_events(api, 1)
        assert (await delivery_outcome(client, failed_id)).result == "failed"
        reruns = []
        for original in (tested["id"], failed_id):
            answer = await api.post(f"/v1/deliveries/{original}/retry")
            assert answer.status_code == 202, answer.text
            reruns.append(answer.json()["id"])
            assert (await delivery_outcome(client, reruns[-1])).result == "failed"
        # Each notice is started before the delivery it announces ends: all of them exist by now, and
        # the API finds a delivery by asking Temporal for its id, not the search index (which lags).
        account = failed_id.split("/")[1]  # delivery/{account}/{event id}/0
        for about, raised in [(failed_id, True), (reruns[1], True), (tested["id"], False), (reruns[0], False)]:
            notice_delivery = notice_delivery_id(account, notice_id(EventType.DELIVERY_FAILED, about), watcher_id)
            found = await api.get(f"/v1/deliveries/{notice_delivery}")
            assert found.status_code == (200 if raised else 404), (about, found.text)
        expected = sorted([failed_id, reruns[1]])
        await eventually(
            lambda: _bodies(receiver, watcher, "DELIVERY_FAILED"),
            lambda b: sorted(n["DeliveryID"] for n in b) == expected,
            what="the notices of the event and of its re-run, no other",
        )


async def test_a_new_endpoint_whose_first_connection_fails_is_announced(client, settings, receiver):
    watcher = receiver.url(OK)
    failing = receiver.url(error(500))
    async with stack(client, settings) as api:
        await ready_endpoint(api, client, watcher, **FAILED_WATCHER)
        endpoint = await create_endpoint(api, failing, retry={"enabled": False, "max_retries": 0})
        assert (await delivery_outcome(client, first_connection_id(endpoint["id"]))).result == "failed"
        [notice] = await eventually(
            lambda: _bodies(receiver, watcher, "DELIVERY_FAILED"), lambda b: len(b) == 1, what="the notice"
        )

    assert notice["DeliveryID"] == first_connection_id(endpoint["id"]) and notice["EndpointID"] == endpoint["id"]
    assert notice["Payload"]["Event"] == "ORDER_SHIPPED"  # the sample order the first connection sent


async def test_an_endpoint_disabled_by_a_410_or_the_health_rule_is_announced(client, settings, receiver):
    gone = receiver.url(OK, error(410))
    failing = receiver.url(OK, error(500))
    watcher = receiver.url(OK)
    async with stack(client, settings, disable_after_failures=2, disable_after_hours=0.0) as api:
        await ready_endpoint(api, client, watcher, **DISABLED_WATCHER)
        gone_endpoint = await ready_endpoint(api, client, gone, events=["ORDER_ERROR"])
        failing_endpoint = await ready_endpoint(api, client, failing, events=["TRACKING_UPDATE"])
        await _post_order_error(api)
        for _ in range(2):
            [delivery_id] = await post_events(api, 1)
            await delivery_outcome(client, delivery_id)
        notices = await eventually(
            lambda: _bodies(receiver, watcher, "ENDPOINT_DISABLED"), lambda b: len(b) == 2, what="both notices"
        )

    by_endpoint = {n["EndpointID"]: n for n in notices}
    assert set(by_endpoint) == {gone_endpoint["id"], failing_endpoint["id"]}
    assert "410" in by_endpoint[gone_endpoint["id"]]["Reason"]
    assert "failed in a row" in by_endpoint[failing_endpoint["id"]]["Reason"]
    assert all(n["EndpointURL"] in (gone, failing) and isinstance(n["date"], int) for n in notices)
    assert bodies(receiver, gone, "ENDPOINT_DISABLED") == bodies(receiver, failing, "ENDPOINT_DISABLED") == []


async def _post_order_error(api: httpx.AsyncClient) -> None:
    event = {
        "event": "ORDER_ERROR",
        "order": {"order_id": "o-410"},
        "error": {"date": 1622671204, "message": "Address not found"},
    }
    assert (await api.post("/v1/events", json=event)).status_code == 202


async def _ids(api: httpx.AsyncClient, **params: str) -> list[str]:
    response = await api.get("/v1/deliveries", params={"limit": 100, **params})
    return [row["id"] for row in response.json()["data"]]


async def _bodies(receiver: Receiver, url: str, event: str) -> list[dict[str, Any]]:
    return bodies(receiver, url, event)


@pytest.mark.parametrize(
    ("stop", "why"), [("delete", "was deleted: delivery stopped"), ("disable", "was disabled: no more retries")]
)
async def test_a_delivery_stopped_because_its_endpoint_was_deleted_or_disabled_is_announced(
    client, settings, receiver, stop, why
):
    """Its pending retries stop (CONTRACT §1). Having made a POST it failed, whether deleted or
    disabled: a skipped delivery is one that made none (§8). So DELIVERY_FAILED goes out (§11)."""
    stopped_url = receiver.url(OK, error(503, **{"retry-after": "2"}))
    watcher = receiver.url(OK)
    async with stack(client, settings) as api:
        source = await ready_endpoint(api, client, stopped_url, retry={"enabled": True, "max_retries": 10})
        await ready_endpoint(api, client, watcher, **FAILED_WATCHER)
        [stopped_id] = await post_events(api, 1)
        await receiver.wait_for(stopped_url, 2)  # its first attempt failed; a retry waits 2 s
        path = f"/v1/endpoints/{source['id']}"
        answer = await (api.delete(path) if stop == "delete" else api.patch(path, json={"disabled": True}))
        assert answer.status_code in (200, 204), answer.text
        stopped = await delivery_outcome(client, stopped_id)
        [notice] = await eventually(
            lambda: _bodies(receiver, watcher, "DELIVERY_FAILED"), lambda b: len(b) == 1, what="the notice"
        )

    assert (stopped.result, stopped.error) == ("failed", f"Endpoint {source['id']} {why}")
    assert [a.response and a.response.status_code for a in stopped.attempts] == [503]
    assert len(receiver.requests(stopped_url)) == 2  # the first connection, the one failed POST
    sent = json.loads(receiver.requests(stopped_url)[-1].body)
    assert notice == {
        "Event": "DELIVERY_FAILED",
        "DeliveryID": stopped_id,
        "EndpointID": source["id"],
        "EndpointURL": stopped_url,
        "OrderID": sent["OrderID"],
        "Error": stopped.error,
        "Retries": stopped.retry,  # those made before the stop (0 unless it came late)
        "date": notice["date"],
        "Payload": sent,
    }
