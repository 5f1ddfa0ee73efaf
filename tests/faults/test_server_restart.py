"""The Temporal server is SIGKILLed while deliveries wait in retry backoff, then started again
on the same database file and port. The worker and the API ride it out: the deliveries
complete afterwards, and the delivery log still lists every earlier delivery."""

from __future__ import annotations

import asyncio

import httpx

from domain.ids import first_connection_id
from tests.conftest import free_port
from tests.faults.receivers import ScriptedReceiver
from tests.faults.stack import (
    api_process,
    create_endpoint,
    fixed_retries,
    outcomes,
    temporal_stack,
    wait_until,
    worker_process,
)
from tests.integration.helpers import tracking_event
from tests.receiver import OK, BackgroundServer, error
from tests.waiting import eventually

BACKOFF = 4.0  # seconds between a failed POST and its retry: the server dies and comes back in between
EVENTS = 4


async def _in_backoff(api: httpx.AsyncClient, delivery_id: str) -> bool:
    """Whether the delivery failed its first POST and waits for its retry, as its log entry says."""
    detail = (await api.get(f"/v1/deliveries/{delivery_id}")).json()
    return detail["result"] == "pending" and len(detail["attempts"]) == 1 and detail["next_attempt_at"] is not None


async def test_server_killed_during_backoff_loses_nothing(tmp_path):
    receiver = ScriptedReceiver()
    async with (
        temporal_stack(tmp_path, **fixed_retries(BACKOFF)) as stack,
        BackgroundServer(receiver, free_port()) as server,
        worker_process(stack) as worker,
        api_process(stack) as api_proc,
        httpx.AsyncClient(base_url=api_proc.url, timeout=30) as api,
    ):
        receiver.base_url = server.url
        client = await stack.client()
        steady_url, flaky_url = receiver.endpoint(OK), receiver.endpoint(error(500), OK)
        steady = await create_endpoint(api, steady_url, max_retries=3)
        flaky = await create_endpoint(api, flaky_url, max_retries=3)
        accepted = await asyncio.gather(*(api.post("/v1/events", json=tracking_event()) for _ in range(EVENTS)))
        by_endpoint: dict[str, list[str]] = {steady: [first_connection_id(steady)], flaky: [first_connection_id(flaky)]}
        for answer in accepted:
            assert answer.status_code == 202, answer.text
            for delivery in answer.json()["deliveries"]:
                by_endpoint[delivery["endpoint_id"]].append(delivery["id"])
        everything = by_endpoint[steady] + by_endpoint[flaky]

        # The steady deliveries are done; every flaky one got its 500 and waits BACKOFF seconds to retry.
        await outcomes(client, by_endpoint[steady], timeout=20)

        async def backoff_states() -> list[bool]:
            return list(await asyncio.gather(*(_in_backoff(api, d) for d in by_endpoint[flaky])))

        await eventually(backoff_states, all, 10, "every flaky delivery to wait in backoff", interval=0.05)
        await stack.server.kill()
        assert all(receiver.count(d) == 1 for d in by_endpoint[flaky])

        # While Temporal is down the API says so …
        async def health() -> int:
            return (await api.get("/healthz")).status_code

        await eventually(health, lambda status: status == 503, 15, "/healthz to answer 503")
        # … and once it is back on the same file and port, everything carries on.
        await stack.server.start(same_port=True)
        await eventually(health, lambda status: status == 200, 30, "/healthz to answer 200 again")
        client = await stack.client()
        records = await outcomes(client, everything, timeout=60)
        await wait_until(lambda: all(receiver.count(d) >= 1 for d in everything), 5, "every POST")

        async def logged() -> set[str]:
            response = await api.get("/v1/deliveries", params={"limit": 100})
            assert response.status_code == 200, response.text
            return {row["id"] for row in response.json()["data"]}

        listed = await eventually(logged, lambda ids: ids >= set(everything), 30, "the log to list every delivery")
        assert worker.running, f"the worker did not survive the server's restart:\n{worker.log_tail()}"

    assert listed == set(everything)
    for delivery_id in by_endpoint[steady]:
        assert (records[delivery_id].result, records[delivery_id].retry) == ("success", 0), records[delivery_id]
        assert receiver.count(delivery_id) == 1
    for delivery_id in by_endpoint[flaky]:
        # The 500 before the crash, the retry after it: no POST lost, none repeated.
        assert (records[delivery_id].result, records[delivery_id].retry) == ("success", 1), records[delivery_id]
        assert receiver.count(delivery_id) == 2
