"""The log's status_code column and filter (CONTRACT §5, §8), and 410 Gone (§9)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
from temporalio.client import Client

from tests.integration.helpers import delivery_outcome
from tests.integration.stacks import post_events, ready_endpoint, stack
from tests.receiver import NO_CONTENT, OK, Receiver, Reply, error
from tests.waiting import eventually


async def rows(api: httpx.AsyncClient, **params: Any) -> dict[str, dict[str, Any]]:
    response = await api.get("/v1/deliveries", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return {row["id"]: row for row in response.json()["data"]}


async def test_rows_carry_the_last_status_and_error_and_the_status_filter_combines(client, settings, receiver):
    first_time = receiver.url(OK)
    no_content = receiver.url(OK, NO_CONTENT)
    second_time = receiver.url(OK, error(500), OK)
    never = receiver.url(OK, error(500))
    async with stack(client, settings) as api:
        ids = {}
        for name, url in [("200", first_time), ("204", no_content), ("500,200", second_time), ("500", never)]:
            # One endpoint at a time, so each event has one delivery.
            endpoint = await ready_endpoint(api, client, url, retry={"enabled": True, "max_retries": 1})
            [ids[name]] = await post_events(api, 1)
            await delivery_outcome(client, ids[name])
            ids[f"{name} endpoint"] = endpoint["id"]
            assert (await api.delete(f"/v1/endpoints/{endpoint['id']}")).status_code == 204
        events = {ids[n] for n in ("200", "204", "500,200", "500")}

        def ended(found: dict[str, dict[str, Any]]) -> bool:  # the log's index catches up with the runs
            return events <= set(found) and all(found[e]["result"] != "pending" for e in events)

        listed = await eventually(lambda: rows(api, event="TRACKING_UPDATE"), ended, what="ended rows")
        ok = await rows(api, status_code=200, event="TRACKING_UPDATE")
        failed_500 = await rows(api, status_code=500, result="failed")
        no_content_rows = await rows(api, status_code=204)
        retried_200 = await rows(api, status_code=200, retried="true")
        by_endpoint = await rows(api, status_code=500, endpoint_id=ids["500 endpoint"])
        none = await rows(api, status_code=404)

    assert {listed[ids[n]]["status_code"] for n in ("200", "500,200")} == {200}
    assert listed[ids["204"]]["status_code"] == 204
    assert (listed[ids["500"]]["status_code"], listed[ids["500"]]["result"]) == (500, "failed")
    assert listed[ids["500"]]["error"] == "HTTP response code is 500 (Internal Server Error), it must be 200"
    assert listed[ids["200"]]["error"] is None
    assert set(ok) == {ids["200"], ids["500,200"]}  # a first-attempt success and a retried one
    assert set(failed_500) == {ids["500"]}
    assert set(no_content_rows) == {ids["204"]}
    assert set(retried_200) == {ids["500,200"]}
    assert set(by_endpoint) == {ids["500"]}  # not its first connection, which got a 200
    assert none == {}


async def test_a_410_disables_the_endpoint_at_once_and_later_events_are_skipped(client, settings, receiver):
    url = receiver.url(OK, error(410), OK)
    async with stack(client, settings) as api:
        endpoint = await ready_endpoint(api, client, url)
        [gone_id] = await post_events(api, 1)
        gone = await delivery_outcome(client, gone_id)
        disabled = await eventually(
            lambda: _endpoint(api, endpoint["id"]), lambda e: e["disabled"], what="the endpoint to be disabled"
        )
        [skipped_id] = await post_events(api, 1)
        skipped = await delivery_outcome(client, skipped_id)
        enabled = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"disabled": False})
        [after_id] = await post_events(api, 1)
        after = await delivery_outcome(client, after_id)

    assert (gone.result, gone.retry, len(gone.attempts)) == ("failed", 0, 1)  # retries were allowed: none made
    assert "410" in disabled["disabled_reason"] and gone_id in disabled["disabled_reason"]
    assert (skipped.result, skipped.attempts) == ("skipped", [])
    assert enabled.json()["disabled"] is False
    assert after.result == "success"
    assert len(receiver.requests(url)) == 3  # first connection, the 410, the one after re-enabling


async def _endpoint(api: httpx.AsyncClient, endpoint_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api.get(f"/v1/endpoints/{endpoint_id}")).json()
    return found


# The old receiver holds its answer until the URL is edited: the POST must not time out first.
HELD_ANSWER_TIMEOUT = 30.0


async def _moved_while_answering(
    api: httpx.AsyncClient, client: Client, receiver: Receiver, answer: Reply
) -> tuple[str, dict[str, Any]]:
    """An endpoint whose URL is edited while its old receiver holds a delivery's POST: that
    receiver answers `answer` once the edit has returned. The delivery's id, and the endpoint."""
    edited = asyncio.Event()
    old, new = receiver.url(OK, dataclasses.replace(answer, answer_when=edited)), receiver.url(OK)
    endpoint = await ready_endpoint(api, client, old, retry={"enabled": True, "max_retries": 1})
    [delivery_id] = await post_events(api, 1)
    await receiver.wait_for(old, 2)  # the POST is at the old receiver, its answer held
    moved = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"url": new})
    assert moved.status_code == 200, moved.text
    edited.set()
    return delivery_id, moved.json() | {"new_url": new}


async def test_an_old_receivers_410_after_a_url_edit_leaves_the_new_one_enabled(client, settings, receiver):
    async with stack(client, settings, http_timeout=HELD_ANSWER_TIMEOUT) as api:
        delivery_id, endpoint = await _moved_while_answering(api, client, receiver, error(410))
        ended = await delivery_outcome(client, delivery_id)
        assert (ended.result, ended.response and ended.response.status_code) == ("failed", 410)  # the old one's
        # An edit after the delivery ended: the registry has handled the report sent before it.
        shown = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"description": "moved"})
        assert (shown.json()["disabled"], shown.json()["disabled_reason"]) == (False, None)
        [later] = await post_events(api, 1)
        assert (await delivery_outcome(client, later)).result == "success"
    assert len(receiver.requests(endpoint["new_url"])) == 1  # the later event


async def test_an_old_receivers_pause_after_a_url_edit_does_not_hold_the_new_one(client, settings, receiver):
    async with stack(client, settings, http_timeout=HELD_ANSWER_TIMEOUT) as api:
        delivery_id, endpoint = await _moved_while_answering(
            api, client, receiver, error(503, **{"retry-after": "3600"})
        )
        # The first attempt recorded: its pause was reported to the registry before.
        shown = await eventually(
            lambda: api.get(f"/v1/deliveries/{delivery_id}"),
            lambda answer: len(answer.json()["attempts"]) == 1,
            what="the old receiver's 503",
        )
        assert shown.json()["attempts"][0]["response"]["status_code"] == 503
        shown = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"description": "moved"})
        assert shown.json()["throttled_until"] is None
        [later] = await post_events(api, 1)
        assert (await delivery_outcome(client, later)).result == "success"
