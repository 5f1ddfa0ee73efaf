"""The API is SIGKILLed in the middle of a burst of events from concurrent clients.

Every event that got its 202 is delivered exactly once per endpoint. The events
left unanswered are posted again, with the same ids, to a new API process: each
is then delivered once, and posting an answered one again starts nothing new.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from temporalio.service import RPCError, RPCStatusCode

from domain.delivery import DEFAULT_ACCOUNT
from domain.ids import event_delivery_id, first_connection_id
from tests.conftest import free_port
from tests.faults.receivers import ScriptedReceiver
from tests.faults.stack import api_process, create_endpoint, outcomes, temporal_stack, wait_until, worker_process
from tests.integration.helpers import new_event_id, tracking_event
from tests.receiver import BackgroundServer
from tests.waiting import eventually

EVENTS = 40
SPREAD = 0.06  # seconds between the clients' starts: the burst lasts about EVENTS * SPREAD
KILL_AFTER = 10  # answers


async def _started(client, event_id: str) -> bool:
    try:
        await client.get_workflow_handle(event_delivery_id(DEFAULT_ACCOUNT, event_id, 0)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_api_killed_mid_burst_accepts_each_event_once(tmp_path):
    receiver = ScriptedReceiver()
    async with (
        temporal_stack(tmp_path, WEBHOOKS_HTTP_TIMEOUT="10") as stack,
        BackgroundServer(receiver, free_port()) as server,
        worker_process(stack),
    ):
        receiver.base_url = server.url
        client = await stack.client()
        events = [tracking_event(new_event_id()) for _ in range(EVENTS)]
        answers: dict[str, dict[str, Any]] = {}
        failures: dict[str, str] = {}

        async with api_process(stack, "api-1") as first_api:
            async with httpx.AsyncClient(base_url=first_api.url, timeout=30) as api:
                endpoints = {await create_endpoint(api, receiver.endpoint()) for _ in range(2)}

            # One connection per client (a pool as large as the burst): built up front, as building
            # an httpx client takes long enough to starve the receiver living in this event loop.
            clients = httpx.AsyncClient(base_url=first_api.url, timeout=30, limits=httpx.Limits(max_connections=EVENTS))

            async def one_client(n: int, event: dict[str, Any]) -> None:
                await asyncio.sleep(n * SPREAD)
                try:
                    response = await clients.post("/v1/events", json=event)
                except httpx.TransportError as err:
                    failures[event["id"]] = repr(err)
                    return
                assert response.status_code == 202, response.text
                answers[event["id"]] = response.json()

            async with clients:
                burst = asyncio.gather(*(one_client(n, e) for n, e in enumerate(events)))
                try:
                    await wait_until(lambda: len(answers) >= KILL_AFTER, 30, f"{KILL_AFTER} answers", interval=0.005)
                finally:
                    first_api.kill()
                    await burst
        assert len(answers) + len(failures) == EVENTS
        unanswered = [e["id"] for e in events if e["id"] not in answers]
        assert unanswered, "the kill should have left some events unanswered"
        # The unanswered events the dead API had started anyway: only their answer was lost.
        lost_answers = [e for e in unanswered if await _started(client, e)]
        burst_outcome = f"{len(answers)} answered, {len(unanswered)} not ({len(lost_answers)} of them started)"

        def deliveries_of(event_id: str) -> set[str]:
            return {event_delivery_id(DEFAULT_ACCOUNT, event_id, n) for n in range(len(endpoints))}

        # Every 202 named one delivery per endpoint, and each is delivered before the API is back.
        for event_id, answer in answers.items():
            assert answer["id"] == event_id
            assert {d["id"] for d in answer["deliveries"]} == deliveries_of(event_id)
            assert {d["endpoint_id"] for d in answer["deliveries"]} == endpoints
        answered_deliveries = sorted(d for e in answers for d in deliveries_of(e))
        await outcomes(client, answered_deliveries, timeout=30)

        async with (
            api_process(stack, "api-2") as second_api,
            httpx.AsyncClient(base_url=second_api.url, timeout=30) as api,
        ):
            # The unanswered ones, and the answered ones once more.
            responses = await asyncio.gather(*(api.post("/v1/events", json=event) for event in events))
            assert all(r.status_code == 202 for r in responses), [r.text for r in responses if r.status_code != 202]
            again = {event["id"]: r.json() for event, r in zip(events, responses, strict=True)}
            all_deliveries = sorted(d for e in events for d in deliveries_of(e["id"]))
            records = await outcomes(client, all_deliveries, timeout=60)

        async def counts() -> tuple[int, int]:
            deliveries = await client.count_workflows('WorkflowType = "DeliveryWorkflow"')
            running = await client.count_workflows('WorkflowType = "DeliveryWorkflow" AND ExecutionStatus = "Running"')
            return deliveries.count, running.count

        # Every delivery workflow there is has finished: no POST can come after this.
        expected = (len(all_deliveries) + len(endpoints), 0)
        settled = await eventually(counts, lambda c: c[0] >= expected[0] and c[1] == 0, 30, "the deliveries to settle")

    assert settled == expected, f"(deliveries, running) = {settled}, expected {expected}; {burst_outcome}"
    for event_id, answer in again.items():
        assert {d["id"] for d in answer["deliveries"]} == deliveries_of(event_id)
        if event_id in answers:
            assert answer == answers[event_id]
    assert all(r.result == "success" for r in records.values()), [r for r in records.values() if r.result != "success"]
    firsts = {first_connection_id(e) for e in endpoints}
    seen = {p.webhook_id for p in receiver.posts}
    assert seen == set(all_deliveries) | firsts, seen ^ (set(all_deliveries) | firsts)
    duplicated = {d: receiver.count(d) for d in seen if receiver.count(d) != 1}
    assert not duplicated, f"only the API died: each delivery should be POSTed once, got {duplicated}; {burst_outcome}"
