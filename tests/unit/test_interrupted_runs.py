"""A retries' run that Temporal, the registry or a flow schedule interrupts is known, not lost;
the run after it finishes what it left undone; one whose endpoint credentials this worker
cannot open says so.

Run in the SDK's activity environment, as Temporal would run it again and again: each run
starts from the heartbeat the previous one left (a retry of an activity sees only that).
A delivery stops as "lost with its workers" after LOST_RUNS_ALLOWED runs that left no trace;
interruptions, however many, must never add up to that.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import deliver_webhook
from activities.deliver_webhook import DeliveryActivities
from activities.http_exchange import Exchange, PhaseTimer, WebhookPoster
from domain.activity_contract import (
    ATTEMPT_INTERRUPTED,
    DELIVERY_FAILED,
    HELD_BACK,
    LOST_RUNS_ALLOWED,
    RUNS_LOST,
    AttemptInput,
    AttemptProgress,
)
from domain.endpoints import BasicAuth, DeliveryOutcome, Endpoint, HealthPolicy
from domain.events import EventType
from domain.flow import RateLimit, SlotAnswer, SlotRequest
from domain.records import AttemptRecord, HttpRequestRecord, HttpResponseRecord
from domain.retry import Backoff
from infra.http import http_client
from infra.secrets import SecretBox
from tests.conftest import free_port
from tests.receiver import BackgroundServer, Receiver, Reply, error


class RegistryDown:
    """An account's endpoints while the registry does not answer."""

    async def for_delivery(self, endpoint_id: str, seen_version: int | None = None) -> Endpoint | None:
        raise ConnectionError("registry did not answer")

    async def record_outcome(self, outcome: DeliveryOutcome) -> None:
        raise AssertionError("no outcome without an attempt")

    async def throttle(self, endpoint_id: str, until: datetime, url: str) -> None:
        raise AssertionError("no throttle without an attempt")

    async def gone(self, endpoint_id: str, delivery_id: str, at: datetime, url: str) -> None:
        raise AssertionError("no 410 without an attempt")

    async def posts_failing(self, endpoint_id: str, at: datetime, url: str) -> None:
        raise AssertionError("no failing POSTs without an attempt")


class OneEndpoint(RegistryDown):
    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint

    async def posts_failing(self, endpoint_id: str, at: datetime, url: str) -> None:
        """Taken: these tests are about what the run does after."""

    async def for_delivery(self, endpoint_id: str, seen_version: int | None = None) -> Endpoint | None:
        return self._endpoint


class NoFlowControl:
    """The endpoints here have no rate limit and no ordering: their schedule is never asked."""


def _unused(_: str) -> Any:
    raise AssertionError("not reached")


class ReportsTaken(OneEndpoint):
    """An endpoint whose registry takes the reports an attempt's end makes."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.gone_for: list[str] = []
        self.outcomes: list[DeliveryOutcome] = []

    async def gone(self, endpoint_id: str, delivery_id: str, at: datetime, url: str) -> None:
        self.gone_for.append(delivery_id)

    async def record_outcome(self, outcome: DeliveryOutcome) -> None:
        self.outcomes.append(outcome)


HTTP_TIMEOUT = 2.0


def _activities(
    pooled: httpx.AsyncClient,
    registry: RegistryDown,
    poster: WebhookPoster | None = None,
    health: HealthPolicy | None = None,
) -> DeliveryActivities:
    return DeliveryActivities(
        poster=poster or WebhookPoster(pooled),
        endpoints=lambda _account: registry,
        schedules=lambda _account: NoFlowControl(),  # type: ignore[arg-type,return-value]
        notices=_unused,
        backoff=Backoff(1.0, 2.0, 60.0),
        http_timeout=HTTP_TIMEOUT,
        health=health or HealthPolicy(failures=50, seconds=0),
        secrets=SecretBox(os.urandom(32)),
    )


# The retries' activity of a delivery whose local first attempt failed.
RETRIES = AttemptInput(
    delivery_id="delivery/default/evt-1/0",
    message_id="msg_1",
    account="default",
    endpoint_id="ep_1",
    body="{}",
    max_attempts=4,
    resume=AttemptProgress(attempts=1),
    prior_runs=1,
)


async def test_interrupted_runs_never_count_as_lost() -> None:
    async with httpx.AsyncClient() as pooled:
        activities = _activities(pooled, RegistryDown())
        attempt = RETRIES
        heartbeats: list[Any] = []
        env = ActivityEnvironment()
        env.on_heartbeat = lambda *details: heartbeats.append(details)
        for run in range(1, 3 * LOST_RUNS_ALLOWED):
            env.info = dataclasses.replace(
                env.info, attempt=run, heartbeat_details=list(heartbeats[-1]) if heartbeats else []
            )
            with pytest.raises(ApplicationError) as ended:
                await env.run(activities.deliver_webhook, attempt)

            assert ended.value.type == ATTEMPT_INTERRUPTED, f"run {run}: {ended.value}"
        assert AttemptProgress.from_details(heartbeats[-1]) == AttemptProgress(
            attempts=1, held=3 * LOST_RUNS_ALLOWED - 1
        )


def _endpoint(**fields: Any) -> Endpoint:
    now = datetime.now(UTC)
    defaults: dict[str, Any] = {"url": "https://receiver.example/hook", "events": [EventType.ORDER_SHIPPED]}
    return Endpoint(id="ep_1", created_at=now, updated_at=now, **(defaults | fields))


def _posted(number: int, response: HttpResponseRecord, error: str | None) -> AttemptRecord:
    """A POST an earlier run made and recorded."""
    request = HttpRequestRecord(method="POST", url="https://receiver.example/hook", headers={}, body="{}")
    return AttemptRecord(
        number=number, started_at=datetime.now(UTC), duration_ms=3, request=request, response=response, error=error
    )


async def test_a_run_after_an_interrupted_410_still_disables_the_endpoint_and_counts_the_failure() -> None:
    # The first attempt got a 410, then the registry did not answer its report: the run was
    # interrupted with the POST recorded. The retries' run must make the reports, not just end.
    gone = _posted(1, HttpResponseRecord(status_code=410, status_text="Gone", headers={}, body=""), "HTTP 410 Gone")
    registry = ReportsTaken(_endpoint())
    async with httpx.AsyncClient() as pooled:
        activities = _activities(pooled, registry)
        resumed = RETRIES.model_copy(update={"resume": AttemptProgress(attempts=1, last=gone, held=1)})
        with pytest.raises(ApplicationError) as ended:
            await ActivityEnvironment().run(activities.deliver_webhook, resumed)

    assert ended.value.type == DELIVERY_FAILED and ended.value.non_retryable  # no POST: the delivery is over
    assert registry.gone_for == [RETRIES.delivery_id]
    assert [(o.delivery_id, o.succeeded) for o in registry.outcomes] == [(RETRIES.delivery_id, False)]


async def test_a_run_that_finishes_an_ended_delivery_while_the_registry_is_down_is_interrupted_not_lost() -> None:
    """The reports left undone by a run lost after the delivery's last POST are made by the next
    run; a registry that does not answer then interrupts it like any other run: retried on
    the delivery's terms, counted as held, with the last POST kept for the run after it."""
    delivered = _posted(2, HttpResponseRecord(status_code=200, status_text="OK", headers={}, body=""), None)
    async with httpx.AsyncClient() as pooled:
        activities = _activities(pooled, RegistryDown())
        resumed = RETRIES.model_copy(update={"resume": AttemptProgress(attempts=2, last=delivered)})
        with pytest.raises(ApplicationError) as ended:
            await ActivityEnvironment().run(activities.deliver_webhook, resumed)

    assert ended.value.type == ATTEMPT_INTERRUPTED
    assert AttemptProgress.model_validate(ended.value.details[0]) == AttemptProgress(attempts=2, last=delivered, held=1)


async def test_a_credential_this_worker_cannot_open_is_named_and_retried_without_a_post() -> None:
    # Sealed with a key this worker does not hold (rotated without WEBHOOKS_SECRETS_OLD_KEYS).
    sealed = SecretBox(os.urandom(32)).seal("hunter2-password", "default", "auth.password")
    endpoint = _endpoint(auth=BasicAuth(username="shop", password=sealed))
    async with httpx.AsyncClient() as pooled:
        activities = _activities(pooled, OneEndpoint(endpoint))
        with pytest.raises(ApplicationError) as ended:
            await ActivityEnvironment().run(activities.deliver_webhook, RETRIES)

    assert ended.value.type == ATTEMPT_INTERRUPTED and not ended.value.non_retryable
    assert "auth.password is sealed with unknown key" in str(ended.value)
    assert "hunter2" not in str(ended.value)
    assert AttemptProgress.model_validate(ended.value.details[0]).attempts == 1  # no POST was made


async def test_a_first_attempt_handed_to_the_schedule_is_a_known_run_not_a_lost_one() -> None:
    # A rate-limited endpoint: the local first attempt may not ask the schedule, so it hands over.
    registry = OneEndpoint(_endpoint(rate_limit=RateLimit(per_second=2)))
    async with httpx.AsyncClient() as pooled:
        activities = _activities(pooled, registry)
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, is_local=True)
        first = RETRIES.model_copy(update={"resume": None, "prior_runs": 0})
        with pytest.raises(ApplicationError) as handed:
            await env.run(activities.deliver_webhook, first)

    progress = AttemptProgress.model_validate(handed.value.details[0])
    # What the workflow gives the retries' activity, whose first run is the delivery's second.
    assert progress.attempts == 0 and progress.lost_runs(2) == 0


class SlowSchedule:
    """An endpoint's schedule that answers "go now", after `seconds`."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    async def ask(self, endpoint_id: str, request: SlotRequest, held_before: int) -> SlotAnswer:
        await asyncio.sleep(self._seconds)
        return SlotAnswer(go_at=datetime.now(UTC))


async def test_a_run_whose_time_went_on_its_schedule_does_not_begin_its_post(monkeypatch) -> None:
    """A POST that Temporal's limit on the run could cut off would be made again by the next run,
    which does not know of it (the schedule's questions can wait for a slot and be re-sent)."""
    monkeypatch.setattr(deliver_webhook, "ATTEMPT_TIMEOUT_SECONDS", 5 + HTTP_TIMEOUT + 0.2)  # margin, HTTP, 0.2 s
    # Nothing listens there: a POST begun would fail as refused, not be held back.
    url = f"http://127.0.0.1:{free_port()}/hook"
    registry = OneEndpoint(_endpoint(url=url, rate_limit=RateLimit(per_second=2)))
    async with httpx.AsyncClient() as pooled:
        activities = _activities(pooled, registry)
        activities._schedules = lambda _account: SlowSchedule(0.5)  # type: ignore[assignment,return-value]
        with pytest.raises(ApplicationError) as held:
            await ActivityEnvironment().run(activities.deliver_webhook, RETRIES)

    assert held.value.type == HELD_BACK and deliver_webhook.OUT_OF_TIME in held.value.message
    assert AttemptProgress.model_validate(held.value.details[0]).attempts == 1  # no POST was made


class ThrottleNotTaken(OneEndpoint):
    """The registry reads, but does not take the pause a 503 asks for."""

    async def throttle(self, endpoint_id: str, until: datetime, url: str) -> None:
        raise ConnectionError("registry did not answer")


async def test_a_run_interrupted_after_a_failed_post_keeps_the_receivers_retry_after() -> None:
    receiver = Receiver()
    async with BackgroundServer(receiver, free_port()) as server, httpx.AsyncClient() as pooled:
        receiver.base_url = server.url
        url = receiver.url(error(503, **{"retry-after": "30"}))
        activities = _activities(pooled, ThrottleNotTaken(_endpoint(url=url)))
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, is_local=True)  # the delivery's first attempt
        first = RETRIES.model_copy(update={"resume": None, "prior_runs": 0})
        with pytest.raises(ApplicationError) as interrupted:
            await env.run(activities.deliver_webhook, first)

    assert interrupted.value.type == ATTEMPT_INTERRUPTED
    assert AttemptProgress.model_validate(interrupted.value.details[0]).attempts == 1  # the POST is counted
    assert len(receiver.requests(url)) == 1
    # The next POST waits for what the receiver asked, though the pause was not recorded.
    assert interrupted.value.next_retry_delay == timedelta(seconds=30)


class FaultyPoster(WebhookPoster):
    """A worker fault: raised before the POST goes out, or after its answer came."""

    def __init__(self, http: httpx.AsyncClient, after_answer: bool) -> None:
        super().__init__(http)
        self._after_answer = after_answer

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timer: PhaseTimer, deadline: float
    ) -> Exchange:
        if self._after_answer:
            await super().post(url, body, headers, timer, deadline)
        raise RuntimeError("a message quoting pw-Secret-77")


@pytest.mark.parametrize("after_answer", [False, True])
async def test_a_worker_fault_is_an_attempt_only_once_the_post_went_out(after_answer: bool) -> None:
    receiver = Receiver()
    async with BackgroundServer(receiver, free_port()) as server, httpx.AsyncClient() as http:
        receiver.base_url = server.url
        url = receiver.url()
        activities = _activities(http, OneEndpoint(_endpoint(url=url)), FaultyPoster(http, after_answer))
        with pytest.raises(ApplicationError) as ended:
            await ActivityEnvironment().run(activities.deliver_webhook, RETRIES)

    assert "pw-Secret-77" not in str(ended.value.details)
    if after_answer:  # counted: the delivery ends within its retries, whatever the worker's fault
        assert (ended.value.type, len(receiver.requests(url))) == (DELIVERY_FAILED, 1)
        assert (
            ended.value.message == "The attempt failed in the worker (RuntimeError); the endpoint may have received it"
        )
    else:  # nothing went out: retried, no POST counted
        assert (ended.value.type, len(receiver.requests(url))) == (ATTEMPT_INTERRUPTED, 0)
        assert AttemptProgress.model_validate(ended.value.details[0]).attempts == 1  # as resumed


async def test_a_post_that_waited_in_vain_for_a_pooled_connection_is_not_an_attempt() -> None:
    """With every connection of the worker's pool in use, a POST that finds none in time never
    left the worker: it is retried, not counted, and not blamed on the receiver."""
    receiver = Receiver()
    answer_held = asyncio.Event()
    # The worker's own client (its HTTP timeout as the activity's), with room for one POST.
    async with (
        BackgroundServer(receiver, free_port()) as server,
        http_client(HTTP_TIMEOUT, allow_private_networks=True, posts_at_once=1) as pooled,
    ):
        receiver.base_url = server.url
        url = receiver.url(Reply(answer_when=answer_held))
        holding = asyncio.create_task(pooled.post(url, content=b"{}", timeout=10))
        await receiver.wait_for(url, 1)
        activities = _activities(pooled, OneEndpoint(_endpoint(url=url)))
        with pytest.raises(ApplicationError) as ended:
            await ActivityEnvironment().run(activities.deliver_webhook, RETRIES)
        answer_held.set()
        await holding

    assert ended.value.type == ATTEMPT_INTERRUPTED
    assert ended.value.message == "Attempt interrupted: PoolTimeout"
    assert AttemptProgress.model_validate(ended.value.details[0]).attempts == 1  # as resumed: no POST counted
    assert len(receiver.requests(url)) == 1  # the one that held the connection


class Releases:
    """An endpoint's flow schedule that records the releases it is told."""

    def __init__(self) -> None:
        self.released: list[tuple[str, str]] = []

    async def release(self, endpoint_id: str, order_id: str, delivery_id: str) -> None:
        self.released.append((order_id, delivery_id))


async def test_a_delivery_out_of_lost_runs_releases_its_order_though_no_run_said_it_was_queued() -> None:
    """A delivery making every attempt in the activity is queued in its order from ingest on; its
    runs lost before any said so, it must still let the next delivery of its order go."""
    schedule = Releases()
    async with httpx.AsyncClient() as pooled:
        activities = _activities(pooled, RegistryDown())
        activities._schedules = lambda _account: schedule  # type: ignore[assignment,return-value]
        in_activity = RETRIES.model_copy(
            update={"resume": None, "prior_runs": 0, "order_id": "order-7", "turn_signalled": True}
        )
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, attempt=LOST_RUNS_ALLOWED + 2)  # every run before lost
        with pytest.raises(ApplicationError) as ended:
            await env.run(activities.deliver_webhook, in_activity)

    assert ended.value.type == RUNS_LOST
    assert schedule.released == [("order-7", RETRIES.delivery_id)]
