"""Receivers slow us down: 429, 502, 503 and 504 pause the whole endpoint (CONTRACT §9).

Every test runs its own worker and API on a task queue of its own, against the session's
dev server and a real receiver on 127.0.0.1.
"""

from __future__ import annotations

import time

from domain.ids import first_connection_id
from tests.faults.receivers import RawReceiver
from tests.integration.helpers import (
    create_endpoint,
    delivery_outcome,
)
from tests.integration.stacks import arrivals_after, post_events, ready_endpoint, stack, throttled
from tests.receiver import OK, error

# -- receiver signals (§9) -------------------------------------------------------------------


async def test_a_429_with_retry_after_pauses_every_delivery_to_the_endpoint(client, settings, receiver):
    url = receiver.url(OK, error(429, **{"retry-after": "3"}), OK)
    async with stack(client, settings) as api:
        endpoint = await ready_endpoint(api, client, url)
        [throttled_id] = await post_events(api, 1)
        [_, too_many] = await receiver.wait_for(url, 2)
        await throttled(api, endpoint["id"])
        held_ids = await post_events(api, 4)

        records = [await delivery_outcome(client, d) for d in [throttled_id, *held_ids]]

    assert [r.result for r in records] == ["success"] * 5
    assert [r.retry for r in records] == [1, 0, 0, 0, 0]  # only the throttled one spent a retry
    later = arrivals_after(receiver, url, 1)
    assert len(later) == 5
    assert min(later) - too_many.at >= 2.9, "a POST went to the endpoint while it asked for a pause"


async def test_a_test_while_the_receiver_asks_for_a_pause_is_refused_at_once(client, settings, receiver):
    url = receiver.url(OK, error(429, **{"retry-after": "30"}), OK)
    async with stack(client, settings) as api:
        endpoint = await ready_endpoint(api, client, url)
        await post_events(api, 1)
        await receiver.wait_for(url, 2)
        until = await throttled(api, endpoint["id"])
        asked = time.monotonic()
        answer = await api.post(f"/v1/endpoints/{endpoint['id']}/test")
        answered_in = time.monotonic() - asked

    assert answer.status_code == 409, answer.text
    assert answered_in < 5, "the test waited out the receiver's pause"
    assert 1 <= int(answer.headers["retry-after"]) <= 30
    assert until.isoformat() in answer.json()["detail"]
    assert len(receiver.requests(url)) == 2  # the first connection and the 429: no test POST


async def test_a_502_or_504_without_retry_after_pauses_the_endpoint_until_the_next_retry(client, settings, receiver):
    for status in (502, 504):
        url = receiver.url(OK, error(status), OK)
        async with stack(client, settings, retry_initial_interval=2.0, retry_backoff=1.0) as api:
            endpoint = await ready_endpoint(api, client, url)
            [failed_id] = await post_events(api, 1)
            [_, overloaded] = await receiver.wait_for(url, 2)
            await throttled(api, endpoint["id"])
            held_ids = await post_events(api, 2)
            records = [await delivery_outcome(client, d) for d in [failed_id, *held_ids]]

        assert [(r.result, r.retry) for r in records] == [("success", 1), ("success", 0), ("success", 0)], status
        assert min(arrivals_after(receiver, url, 1)) - overloaded.at >= 1.9, status


async def test_a_503_cut_short_after_its_headers_still_pauses_the_endpoint(client, settings):
    """A receiver that sent its status and headers, then closed mid-body, was logged as no
    response at all: its 503's Retry-After was ignored and the endpoint POSTed again at the
    next backoff (an outside probe found it). The answer is kept, cut, and honoured."""
    async with RawReceiver() as raw, stack(client, settings) as api:
        url = raw.url("/cut503")  # Retry-After: 3, against the tests' backoff of 0.05 s
        endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 1})
        await throttled(api, endpoint["id"])
        record = await delivery_outcome(client, first_connection_id(endpoint["id"]))

    assert (record.result, record.retry) == ("failed", 1)
    cut = record.attempts[0]
    assert cut.response is not None and (cut.response.status_code, cut.response.body_truncated) == (503, True)
    assert cut.error is not None and cut.error.startswith("HTTP response cut short: the connection closed"), cut
    first, retried = raw.exchanges_to(url)
    assert retried.opened_at - first.opened_at >= 2.9, "the retry did not wait for the Retry-After"


async def test_retry_after_is_honoured_beyond_the_longest_retry_interval(client, settings, receiver):
    url = receiver.url(OK, error(429, **{"retry-after": "5"}), OK)
    async with stack(client, settings, retry_max_interval=1.0) as api:
        await ready_endpoint(api, client, url)
        [delivery_id] = await post_events(api, 1)
        record = await delivery_outcome(client, delivery_id)

    [_, too_many, retried] = receiver.requests(url)
    assert (record.result, record.retry) == ("success", 1)
    assert retried.at - too_many.at >= 4.9
