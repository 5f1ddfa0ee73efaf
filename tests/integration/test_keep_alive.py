"""A POST the receiver read and dropped without an answer is an attempt like any other: never
sent again within it, so every POST a receiver sees is in the log (CONTRACT §4)."""

from __future__ import annotations

import asyncio
import random

import httpx

from activities.http_exchange import PhaseTimer, WebhookPoster
from domain.delivery import DEFAULT_ACCOUNT
from domain.ids import event_delivery_id, first_connection_id
from infra.http import http_client
from tests.closing_receiver import ClosingReceiver, answers_per_connection
from tests.integration.helpers import create_endpoint, delivery_outcome, new_event_id, post_event, tracking_event


async def test_a_post_the_receiver_read_and_dropped_is_one_attempt_and_the_retry_another(api, client):
    event_id = new_event_id()
    delivery_id = event_delivery_id(DEFAULT_ACCOUNT, event_id, 0)
    # Every POST answered, except this delivery's first: read, then its connection closed.
    async with ClosingReceiver(lambda post: post.webhook_id != delivery_id or post.times_seen > 0) as receiver:
        endpoint = await create_endpoint(api, receiver.url, retry={"enabled": True, "max_retries": 2})
        await delivery_outcome(client, first_connection_id(endpoint["id"]))
        await post_event(api, tracking_event(event_id))
        record = await delivery_outcome(client, delivery_id)

    assert [seen.answered for seen in receiver.posts_of(delivery_id)] == [False, True]
    assert (record.result, record.retry) == ("success", 1)
    first = record.attempts[0]
    assert first.error is not None and "connection closed by the receiver before any response" in first.error


async def test_a_receiver_that_never_answers_gets_one_post_per_attempt_and_is_named_in_the_error(api, client):
    async with ClosingReceiver(answers_per_connection(lambda number: 1 if number == 1 else 0)) as receiver:
        endpoint = await create_endpoint(api, receiver.url)
        await delivery_outcome(client, first_connection_id(endpoint["id"]))
        accepted = await post_event(api, tracking_event())
        delivery_id = accepted["deliveries"][0]["id"]
        record = await delivery_outcome(client, delivery_id)

    assert len(receiver.posts_of(delivery_id)) == 1  # no retries: one POST, never sent again
    assert record.result == "failed"
    assert record.error is not None and "connection closed by the receiver before any response" in record.error


async def _post(poster: WebhookPoster, url: str, webhook_id: str) -> int | str:
    """The answer's status, or what the poster raised in words."""
    timer = PhaseTimer()
    try:
        deadline = asyncio.get_running_loop().time() + 10
        return (await poster.post(url, b"{}", {"webhook-id": webhook_id}, timer, deadline)).status_code
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__} ({'new' if timer.connected else 'kept-alive'} connection)"


async def test_a_post_dropped_on_a_kept_alive_connection_is_not_sent_again():
    async with (
        ClosingReceiver(answers_per_connection(lambda _: 1)) as receiver,
        http_client(5.0, allow_private_networks=True) as http,
    ):
        poster = WebhookPoster(http)
        assert await _post(poster, receiver.url, "msg_first") == 200
        dropped = await _post(poster, receiver.url, "msg_second")  # on the first's connection, at once

    assert dropped == "RemoteProtocolError (kept-alive connection)"
    assert [(seen.webhook_id, seen.answered) for seen in receiver.seen] == [("msg_first", True), ("msg_second", False)]


async def test_an_idle_connection_is_let_go_before_a_two_second_idle_timeout_could_drop_a_post():
    """gunicorn closes connections idle for 2 s; the worker's pool lets them go sooner."""
    async with (
        ClosingReceiver(lambda post: post.idle_s < 2.0) as receiver,
        http_client(5.0, allow_private_networks=True) as http,
    ):
        poster = WebhookPoster(http)
        assert await _post(poster, receiver.url, "msg_before") == 200
        await asyncio.sleep(2.1)  # idle, as between two events a while apart
        assert await _post(poster, receiver.url, "msg_after") == 200

    assert [(seen.connection, seen.answered) for seen in receiver.seen] == [(1, True), (2, True)]


async def test_through_keep_alive_churn_each_post_is_read_once_and_reported_as_the_receiver_treated_it():
    """The worker's HTTP layer under churn: every connection is dropped after 1-3 answers."""
    churn = random.Random(7)
    posts, in_flight = 5_000, 16
    async with (
        ClosingReceiver(answers_per_connection(lambda _: churn.randint(1, 3))) as receiver,
        http_client(5.0, allow_private_networks=True) as http,
    ):
        poster = WebhookPoster(http)
        gate = asyncio.Semaphore(in_flight)

        async def post(n: int) -> int | str:
            async with gate:
                return await _post(poster, receiver.url, f"msg_{n}")

        outcomes = await asyncio.gather(*(post(n) for n in range(posts)))

    answered = {seen.webhook_id for seen in receiver.seen if seen.answered}
    dropped = {seen.webhook_id for seen in receiver.seen if not seen.answered}
    assert len(receiver.seen) == len(answered) + len(dropped)  # no webhook-id read twice
    assert len(dropped) > 500, "the receiver should have dropped many requests: the churn was not exercised"
    succeeded = {f"msg_{n}" for n, outcome in enumerate(outcomes) if outcome == 200}
    assert succeeded == answered
    failed = {f"msg_{n}": outcome for n, outcome in enumerate(outcomes) if outcome != 200}
    assert failed.keys() == dropped
    assert all("kept-alive connection" in str(outcome) for outcome in failed.values())
