"""FIFO per order survives a worker SIGKILLed mid-queue: nothing lost, nothing reordered.

Two worker processes serve an ordered endpoint whose receiver takes a second
per answer. One worker is killed while the order's queue is half done; the
other takes over the killed one's attempt once its heartbeats stop, and the
order's deliveries still arrive one at a time, in the order they were accepted.
"""

from __future__ import annotations

import itertools

import httpx

from domain.ids import first_connection_id
from tests.conftest import free_port
from tests.faults.receivers import ScriptedReceiver
from tests.faults.stack import (
    api_process,
    create_endpoint,
    outcome,
    outcomes,
    temporal_stack,
    wait_until,
    worker_process,
)
from tests.integration.helpers import tracking_event
from tests.receiver import BackgroundServer, Reply

EVENTS = 5
ANSWER_TAKES = 1.0


async def test_a_killed_worker_loses_and_reorders_nothing_in_a_fifo_queue(tmp_path):
    receiver = ScriptedReceiver()
    async with (
        temporal_stack(tmp_path, WEBHOOKS_HTTP_TIMEOUT="10") as stack,
        BackgroundServer(receiver, free_port()) as server,
        api_process(stack) as api_proc,
        httpx.AsyncClient(base_url=api_proc.url, timeout=60) as api,
        worker_process(stack, "worker-a") as worker_a,
        worker_process(stack, "worker-b"),
    ):
        receiver.base_url = server.url
        client = await stack.client()
        url = receiver.endpoint(Reply(delay=ANSWER_TAKES))
        endpoint_id = await create_endpoint(api, url, max_retries=3)
        assert (await api.patch(f"/v1/endpoints/{endpoint_id}", json={"ordering": "fifo"})).status_code == 200
        await outcome(client, first_connection_id(endpoint_id), 30)

        ordered = []
        for _ in range(EVENTS):
            accepted = await api.post("/v1/events", json=tracking_event(order_id="fifo-kill"))
            assert accepted.status_code == 202, accepted.text
            ordered.append(accepted.json()["deliveries"][0]["id"])
        await wait_until(lambda: receiver.count(ordered[1]) >= 1, 30, "the second delivery's POST")
        worker_a.kill()

        records = await outcomes(client, ordered, 90)

    assert {r.result for r in records.values()} == {"success"}
    posts = [p for p in receiver.posts_to(url) if p.webhook_id in ordered]
    first_posts = list(dict.fromkeys(p.webhook_id for p in posts))
    assert first_posts == ordered, "the order's deliveries were reordered"
    # Each one started after the previous one's last POST was answered (a POST lost with the
    # killed worker may be made again, the documented at-least-once window, but still in turn).
    for earlier, later in itertools.pairwise(ordered):
        answered = max(p.answer_due for p in posts if p.webhook_id == earlier)
        started = min(p.received_at for p in posts if p.webhook_id == later)
        assert started >= answered - 0.05, f"{later} started before {earlier} was answered"
