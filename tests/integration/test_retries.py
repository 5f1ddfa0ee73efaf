"""Retries are Temporal retry policies capped at the endpoint's count (CONTRACT §1, §4)."""

from __future__ import annotations

from domain.ids import first_connection_id
from tests.integration.helpers import create_endpoint, delivery_outcome, post_event, tracking_event
from tests.receiver import OK, Receiver, error


async def _endpoint_then_event(api, client, receiver: Receiver, retry, *replies):
    """An endpoint whose first connection succeeds, then an event answered by `replies`."""
    url = receiver.url()
    endpoint = await create_endpoint(api, url, retry=retry)
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    receiver.script(url, *replies)
    accepted = await post_event(api, tracking_event())
    [delivery] = [d for d in accepted["deliveries"] if d["endpoint_id"] == endpoint["id"]]
    record = await delivery_outcome(client, delivery["id"])
    requests = [r for r in receiver.requests(url) if r.headers["webhook-id"] == delivery["id"]]
    return record, requests


async def test_two_failures_then_success_takes_exactly_three_posts(api, client, receiver):
    record, requests = await _endpoint_then_event(
        api, client, receiver, {"enabled": True, "max_retries": 5}, error(500), error(502), OK
    )

    assert len(requests) == 3
    assert record.result == "success"
    assert record.retry == 2
    # One delivery id across its retries, so receivers can de-duplicate.
    assert {r.headers["webhook-id"] for r in requests} == {record.id}
    assert len({r.body for r in requests}) == 1


async def test_a_permanent_503_with_three_retries_gets_exactly_four_posts(api, client, receiver):
    record, requests = await _endpoint_then_event(
        api, client, receiver, {"enabled": True, "max_retries": 3}, error(503)
    )

    assert len(requests) == 4
    assert record.result == "failed"
    assert record.retry == 3
    assert record.error == "HTTP response code is 503 (Service Unavailable), it must be 200"


async def test_retry_disabled_posts_exactly_once_whatever_the_count(api, client, receiver):
    record, requests = await _endpoint_then_event(
        api, client, receiver, {"enabled": False, "max_retries": 10}, error(500)
    )

    assert len(requests) == 1
    assert record.result == "failed"
    assert record.retry == 0


async def test_ten_retries_is_the_most_an_endpoint_can_ask_for(api, client, receiver):
    record, requests = await _endpoint_then_event(
        api, client, receiver, {"enabled": True, "max_retries": 10}, error(500)
    )

    assert len(requests) == 11
    assert record.retry == 10


async def test_retry_after_on_429_is_honoured(api, client, receiver, settings):
    # The configured backoff is 50 ms; the receiver asks for a second.
    assert settings.retry_initial_interval < 0.2
    record, requests = await _endpoint_then_event(
        api, client, receiver, {"enabled": True, "max_retries": 1}, error(429, **{"retry-after": "1"}), OK
    )

    assert record.result == "success"
    assert len(requests) == 2
    assert requests[1].at - requests[0].at >= 0.95
