"""A POST on a keep-alive connection the receiver closes at that moment is sent again, once, on a new one."""

from __future__ import annotations

import asyncio
import random

from activities.http_exchange import PhaseTimer, WebhookPoster
from domain.ids import first_connection_id
from infra.http import http_client
from tests.closing_receiver import ClosingReceiver
from tests.integration.helpers import create_endpoint, delivery_outcome, post_event, tracking_event


async def test_a_post_on_a_connection_closed_under_it_is_sent_again_with_the_same_webhook_id(api, client):
    async with ClosingReceiver(answers_per_connection=lambda _: 1) as receiver:
        endpoint = await create_endpoint(api, receiver.url)
        await delivery_outcome(client, first_connection_id(endpoint["id"]))
        accepted = await post_event(api, tracking_event())
        delivery_id = accepted["deliveries"][0]["id"]
        record = await delivery_outcome(client, delivery_id)

    assert (record.result, record.retry, record.error) == ("success", 0, None)
    posts = [s for s in receiver.seen if s.webhook_id == delivery_id]
    assert [s.answered for s in posts] == [False, True]  # read, dropped unanswered; then answered
    assert posts[0].connection != posts[1].connection  # the second time on a connection of its own


async def test_a_receiver_that_never_answers_is_named_in_the_error(api, client):
    async with ClosingReceiver(answers_per_connection=lambda number: 1 if number == 1 else 0) as receiver:
        endpoint = await create_endpoint(api, receiver.url)
        await delivery_outcome(client, first_connection_id(endpoint["id"]))
        accepted = await post_event(api, tracking_event())
        record = await delivery_outcome(client, accepted["deliveries"][0]["id"])

    assert record.result == "failed"
    assert record.error is not None and "connection closed by the receiver before any response" in record.error


async def test_twenty_thousand_posts_through_keep_alive_churn_all_answered():
    """The worker's HTTP layer under churn: every connection is dropped after 1-3 answers."""
    churn = random.Random(7)
    posts, in_flight = 20_000, 16
    async with (
        ClosingReceiver(answers_per_connection=lambda _: churn.randint(1, 3)) as receiver,
        http_client(5.0, allow_private_networks=True) as pooled,
        http_client(5.0, allow_private_networks=True, keep_alive=False) as fresh,
    ):
        poster = WebhookPoster(pooled, fresh)
        gate = asyncio.Semaphore(in_flight)

        async def post(n: int) -> int:
            async with gate:
                answer = await poster.post(receiver.url, b"{}", {"webhook-id": f"msg_{n}"}, PhaseTimer())
                return answer.status_code

        statuses = await asyncio.gather(*(post(n) for n in range(posts)), return_exceptions=True)

    failures = [s for s in statuses if s != 200]
    assert failures == [], f"{len(failures)} of {posts} failed, e.g. {failures[:3]}"
    dropped = sum(1 for s in receiver.seen if not s.answered)
    assert dropped > 1000, "the receiver should have dropped many requests: the race was not exercised"
