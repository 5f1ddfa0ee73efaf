"""The only worker is SIGKILLed while POSTs are in flight and while retries wait in backoff.

A new worker finishes every delivery. For each delivery the receiver sees the
POSTs its endpoint's retry settings and replies dictate, plus at most one
duplicate (same webhook-id) of a POST the dead worker never recorded: an
attempt lost with its worker is re-run (detected by its heartbeat, about
10 s; a first attempt, run as a local activity, by its workflow task's
timeout, also 10 s) without spending the endpoint's retries.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from domain.ids import first_connection_id
from tests.conftest import free_port
from tests.faults.receivers import ScriptedReceiver
from tests.faults.stack import (
    api_process,
    create_endpoint,
    outcomes,
    temporal_stack,
    timeline,
    wait_until,
    worker_process,
)
from tests.integration.helpers import tracking_event
from tests.receiver import OK, BackgroundServer, Reply, error

SLOW = 1.5  # seconds a slow receiver takes to answer: the window in which the worker dies
RETRY_INTERVAL = 1.0
EVENTS = 2
# A failing answer that does not throttle the endpoint (a 503 would, CONTRACT §9): this test
# is about a worker's crash, each delivery on its own.
FAILING = 500
UNAVAILABLE = "HTTP response code is 500 (Internal Server Error), it must be 200"
# A POST answered this shortly before the kill may not have been recorded by the dead worker.
UNRECORDED_WINDOW = 1.0
# Heartbeat timeout (10 s), then the endpoint lookup (up to 10 s more while the registry workflow is
# still cached on the dead worker): well under the attempt's own 60 s limit.
RERUN_WITHIN = 25


@dataclass(frozen=True)
class Case:
    replies: tuple[Reply, ...]
    max_retries: int | None  # None: retry disabled
    posts: int  # POSTs its replies and retries dictate, without any crash
    result: str


SLOW_OK = Reply(delay=SLOW)
SLOW_FAILING = Reply(status=FAILING, body=b'{"error": true}', delay=SLOW)
CASES = {
    "slow, retries": Case((SLOW_OK,), 3, 1, "success"),
    "slow, no retry": Case((SLOW_OK,), None, 1, "success"),
    "failing twice": Case((error(FAILING), error(FAILING), OK), 5, 3, "success"),
    "slow failing, 3 retries": Case((SLOW_FAILING,), 3, 4, "failed"),
    "failing, 3 retries": Case((error(FAILING),), 3, 4, "failed"),
    "slow failing, no retry": Case((SLOW_FAILING,), None, 1, "failed"),
    "failing, no retry": Case((error(FAILING),), None, 1, "failed"),
}


async def test_killed_worker_loses_no_delivery_and_spends_no_retry(tmp_path):
    receiver = ScriptedReceiver()
    overrides = {
        "WEBHOOKS_RETRY_INITIAL_INTERVAL": str(RETRY_INTERVAL),
        "WEBHOOKS_RETRY_MAX_INTERVAL": str(RETRY_INTERVAL),
        "WEBHOOKS_HTTP_TIMEOUT": "5",
    }
    async with (
        temporal_stack(tmp_path, **overrides) as stack,
        BackgroundServer(receiver, free_port()) as server,
        api_process(stack) as api_proc,
        httpx.AsyncClient(base_url=api_proc.url, timeout=30) as api,
    ):
        receiver.base_url = server.url
        client = await stack.client()
        async with worker_process(stack, "worker-1") as first:
            endpoints = {}
            for name, case in CASES.items():
                url = receiver.endpoint(*case.replies)
                endpoints[name] = (url, await create_endpoint(api, url, case.max_retries))
            accepted = await asyncio.gather(*(api.post("/v1/events", json=tracking_event()) for _ in range(EVENTS)))
            assert all(a.status_code == 202 for a in accepted), [a.text for a in accepted]
            event_deliveries = [d["id"] for a in accepted for d in a.json()["deliveries"]]
            assert len(event_deliveries) == EVENTS * len(CASES)
            # Kill as soon as every event delivery made its first POST: the slow ones are in flight,
            # the failed fast ones wait in backoff.
            await wait_until(lambda: all(receiver.count(d) >= 1 for d in event_deliveries), 20, "the first POSTs")
            first.kill()
            killed_at = time.monotonic()
        assert first.process.returncode == -9

        async with worker_process(stack, "worker-2") as second:
            deliveries = {
                name: [first_connection_id(endpoint_id)] + [d for d in event_deliveries if d.endswith(endpoint_id)]
                for name, (_, endpoint_id) in endpoints.items()
            }
            records = await outcomes(client, [d for ds in deliveries.values() for d in ds], timeout=90)
            second_log = second.posts_logged()
            logs = {"worker-1": first.log(), "worker-2": second.log()}
            cancelled = second.cancelled_attempts()

    in_flight_at_kill = [p for p in receiver.posts if p.received_at < killed_at < p.answer_due]
    assert in_flight_at_kill, "the kill should have interrupted POSTs in flight"
    retried_after_kill = {p.webhook_id for p in receiver.posts if p.received_at > killed_at and p.nth > 1}
    answered_before_kill = {
        p.webhook_id for p in receiver.posts if p.answer_due < killed_at and p.reply.status == FAILING
    }
    assert retried_after_kill & answered_before_kill, "the kill should have found retries waiting in backoff"
    problems = []
    for name, case in CASES.items():
        url, _ = endpoints[name]
        for delivery_id in deliveries[name]:
            posts = [p for p in receiver.posts_to(url) if p.webhook_id == delivery_id]
            # Unanswered when the worker died: the POST must be made again, and is not a retry.
            lost = [p for p in posts if p.received_at < killed_at < p.answer_due]
            # Answered just before: the dead worker may or may not have recorded it.
            unsure = [p for p in posts if killed_at - UNRECORDED_WINDOW <= p.answer_due <= killed_at]
            record = records[delivery_id]
            seen = len(posts)
            allowed = {case.posts + len(lost)} | ({case.posts + 1} if unsure and not lost else set())
            if seen not in allowed:
                problems.append(
                    f"{name} {delivery_id}: {seen} POSTs, expected {sorted(allowed)} (lost {len(lost)}); "
                    f"{timeline(posts, killed_at, logs, delivery_id)}"
                )
            if record.result != case.result:
                problems.append(f"{name} {delivery_id}: {record.result} ({record.error}), expected {case.result}")
            expected_retries = case.posts - 1
            if record.retry != expected_retries and not (unsure and record.retry == expected_retries - 1):
                problems.append(f"{name} {delivery_id}: retry {record.retry}, expected {expected_retries}")
            if case.result == "failed" and record.error != UNAVAILABLE:
                problems.append(f"{name} {delivery_id}: error {record.error!r}")
            # Every attempt recorded before the kill is kept, in order, beside those after it
            # (a POST the dead worker did not record is the one the log cannot know of).
            numbers = [a.number for a in record.attempts]
            if numbers != list(range(1, record.retry + 2)):
                problems.append(f"{name} {delivery_id}: attempts {numbers}, retry {record.retry}")
            answered = [a.response.status_code for a in record.attempts if a.response]
            final = 200 if case.result == "success" else FAILING
            if answered != [FAILING] * (len(answered) - 1) + [final]:
                problems.append(f"{name} {delivery_id}: answers {answered}, POSTs {[p.reply.status for p in posts]}")
            again = [p.received_at - killed_at for p in posts if p.received_at > killed_at]
            # A lost attempt is noticed through its heartbeat (10 s), not its 60 s time limit.
            if lost and (not again or again[0] > RERUN_WITHIN):
                problems.append(f"{name} {delivery_id}: POST lost at the kill not re-run within {RERUN_WITHIN}s")
    if problems:
        problems.append(f"(worker-2 ran {cancelled} attempts that Temporal timed out while they ran)")
    assert not problems, "\n".join(problems)
    # The re-runs were the new worker's.
    assert {d for d, _ in second_log} >= {p.webhook_id for p in in_flight_at_kill}
