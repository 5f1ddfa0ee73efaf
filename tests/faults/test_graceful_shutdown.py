"""SIGTERM lets the worker finish the POST it is in the middle of, then it exits cleanly.

Without the grace period the attempt would be cancelled and, once the heartbeat
timed out, POSTed again by the next worker: the count of POSTs tells them apart.
"""

from __future__ import annotations

import asyncio
import signal

import httpx

from domain.ids import first_connection_id
from tests.conftest import free_port
from tests.faults.receivers import ScriptedReceiver
from tests.faults.stack import api_process, create_endpoint, outcome, temporal_stack, wait_until, worker_process
from tests.integration.helpers import tracking_event
from tests.receiver import BackgroundServer, Reply

SLOW = 3.0  # seconds the receiver takes to answer: the worker is asked to stop meanwhile


async def test_sigterm_finishes_the_post_in_flight_then_exits(tmp_path):
    receiver = ScriptedReceiver()
    async with (
        temporal_stack(tmp_path, WEBHOOKS_HTTP_TIMEOUT="10") as stack,
        BackgroundServer(receiver, free_port()) as server,
        api_process(stack) as api_proc,
        httpx.AsyncClient(base_url=api_proc.url, timeout=30) as api,
    ):
        receiver.base_url = server.url
        client = await stack.client()
        async with worker_process(stack) as first:
            endpoint_id = await create_endpoint(api, receiver.endpoint(Reply(delay=SLOW)))
            await outcome(client, first_connection_id(endpoint_id), 30)
            accepted = (await api.post("/v1/events", json=tracking_event())).json()
            delivery_id = accepted["deliveries"][0]["id"]
            await wait_until(lambda: receiver.count(delivery_id) == 1, 30, "the POST to arrive")

            first.process.send_signal(signal.SIGTERM)
            exit_code = await asyncio.wait_for(first.process.wait(), SLOW + 15)
            finished_log = first.log()
        # The attempt's completion is recorded; a new worker only closes the workflow.
        async with worker_process(stack, "worker-2"):
            record = await outcome(client, delivery_id, 30)

    assert exit_code == 0
    assert f"POST {delivery_id} attempt 1: delivered" in finished_log
    assert record.result == "success" and record.retry == 0
    assert receiver.count(delivery_id) == 1  # not cancelled and POSTed again
