"""Fairness between accounts (CONTRACT §13): one account's backlog does not hold back another's deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.service import RPCError

from domain.ids import first_connection_id
from tests.integration.helpers import api_with, delivery_outcome, tracking_event
from tests.receiver import Receiver, Reply
from tests.waiting import eventually
from worker import delivery_worker

BURST = 1000  # account A's events
IN_FLIGHT = 16  # A's producer posts them this many at a time
# Two POSTs at a time that take 0.2 s each: the worker drains at most 10 deliveries/s,
# below the rate the API accepts A's burst, so a real backlog builds up in Temporal.
ACTIVITY_SLOTS = 2
A_ANSWERS_IN = 0.2
# B posts once this many of A's deliveries wait: served first come first served, B's
# would wait for all of them (~30 s at 10/s).
BACKLOG_BEFORE_B = 300
B_EVENTS = 3
B_P95_BOUND = 5.0  # seconds from the 202 to the receiver; the tight figure is `make bench`'s


async def test_one_accounts_backlog_does_not_delay_another_accounts_deliveries(settings, client, receiver):
    tokens = {"fair-a": SecretStr("token-a"), "fair-b": SecretStr("token-b")}
    # Its own task queue, so this worker's few slots serve this test alone.
    fair = settings.model_copy(
        update={
            "task_queue": f"{settings.task_queue}-fair",
            "api_tokens": tokens,
            "worker_max_activities": ACTIVITY_SLOTS,
        }
    )
    a, b = {"Authorization": "Bearer token-a"}, {"Authorization": "Bearer token-b"}
    url_a, url_b = receiver.url(Reply(delay=A_ANSWERS_IN)), receiver.url()
    loop = asyncio.get_running_loop()
    accepted_a: list[str] = []
    accepted_b: dict[str, float] = {}  # B's delivery id -> when its 202 came

    async with delivery_worker(client, fair) as running, running, api_with(fair) as http:
        endpoints = [await _create_endpoint(http, url, auth) for url, auth in ((url_a, a), (url_b, b))]
        await receiver.wait_for(url_a, 1)  # the first connections: the worker is serving
        await receiver.wait_for(url_b, 1)

        burst = asyncio.create_task(_post_concurrently(http, a, BURST, accepted_a.append))
        await eventually(
            lambda: _now(_waiting(accepted_a, receiver, url_a)),
            lambda waiting: waiting >= BACKLOG_BEFORE_B,
            timeout=120,
            what="account A's backlog",
        )
        ahead_of_b = len(accepted_a)  # A's deliveries accepted before any of B's
        for _ in range(B_EVENTS):
            [delivery] = (await _post(http, b, tracking_event()))["deliveries"]
            accepted_b[delivery["id"]] = loop.time()
        served_a_before_b_queued = len(receiver.requests(url_a)) - 1
        arrived_b = await receiver.wait_for(url_b, 1 + B_EVENTS, timeout=90)
        served_a_meanwhile = len(receiver.requests(url_a)) - 1
        # Counted in A's deliveries, not seconds, so a slow machine does not move it.
        a_ahead_of_queued_b = served_a_meanwhile - served_a_before_b_queued
        # A POST the receiver got is not yet a delivery that ended: wait for the end to re-run it.
        await delivery_outcome(client, next(iter(accepted_b)))
        rerun = await http.post(f"/v1/deliveries/{next(iter(accepted_b))}/retry", headers=b)
        assert rerun.status_code == 202, rerun.text
        await burst
    # What is left of A's backlog (and B's re-run, queued behind it) has nothing more to show.
    await _terminate(client, [*accepted_a, rerun.json()["id"]])

    assert len(accepted_a) == BURST
    after_202 = sorted(r.at - accepted_b[r.headers["webhook-id"]] for r in arrived_b[1:])
    p95 = statistics.quantiles(after_202, n=20, method="inclusive")[-1]
    # B's deliveries reached the receiver within seconds of their 202…
    assert p95 < B_P95_BOUND, (after_202, f"A's deliveries served before B's: {served_a_meanwhile}")
    # …ahead of A's backlog: most of A's deliveries accepted before B's were still waiting.
    assert served_a_meanwhile < ahead_of_b - BACKLOG_BEFORE_B // 2, (served_a_meanwhile, ahead_of_b)
    # Once B's were queued, only what the worker already had in hand went first (its workflow
    # tasks, first attempts and activities: ACTIVITY_SLOTS each), not a queue held in the worker.
    assert a_ahead_of_queued_b <= 3 * ACTIVITY_SLOTS * B_EVENTS, a_ahead_of_queued_b
    # What an operator sees on a delivery (`temporal workflow describe`), started by the API
    # or, for a first connection, by the registry workflow: its account's fairness key, and
    # a priority that puts first deliveries ahead of re-runs.
    assert await _priority(client, next(iter(accepted_b))) == ("fair-b", 2)
    assert await _priority(client, first_connection_id(endpoints[0]["id"])) == ("fair-a", 2)
    assert await _priority(client, rerun.json()["id"]) == ("fair-b", 4)


async def _create_endpoint(http: httpx.AsyncClient, url: str, auth: dict[str, str]) -> dict[str, Any]:
    created = await http.post("/v1/endpoints", json={"url": url, "events": ["TRACKING_UPDATE"]}, headers=auth)
    assert created.status_code == 201, created.text
    endpoint: dict[str, Any] = created.json()
    return endpoint


async def _priority(client: Client, workflow_id: str) -> tuple[str, int]:
    described = await client.get_workflow_handle(workflow_id).describe()
    priority = described.raw_description.workflow_execution_info.priority
    return priority.fairness_key, priority.priority_key


async def _now(value: int) -> int:
    return value


def _waiting(accepted: list[str], receiver: Receiver, url: str) -> int:
    """Deliveries accepted but not received yet (the endpoint's first connection aside)."""
    return len(accepted) - (len(receiver.requests(url)) - 1)


async def _post(http: httpx.AsyncClient, auth: dict[str, str], event: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/v1/events", json=event, headers=auth)
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def _post_concurrently(
    http: httpx.AsyncClient, auth: dict[str, str], count: int, on_202: Callable[[str], None]
) -> None:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> None:
        async with gate:
            [delivery] = (await _post(http, auth, tracking_event()))["deliveries"]
        on_202(delivery["id"])

    await asyncio.gather(*(one() for _ in range(count)))


async def _terminate(client: Client, delivery_ids: list[str]) -> None:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(delivery_id: str) -> None:
        async with gate:
            with contextlib.suppress(RPCError):  # it was delivered already
                await client.get_workflow_handle(delivery_id).terminate("the fairness test is over")

    await asyncio.gather(*(one(d) for d in delivery_ids))
