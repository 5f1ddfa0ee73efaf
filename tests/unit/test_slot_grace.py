"""A rate-limit slot is begun within its grace or not at all (RateLimit.start_grace): the POST
that would begin later is not made, and the run asks for another slot; a delivery asks for its
slot no sooner than it can take it, and reads its endpoint before the slot, not after.

Run in the SDK's activity environment, POSTing to a receiver on 127.0.0.1, with a schedule that
answers as the tests say (the real one is tested in test_flow and test_flow_control).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.deliver_webhook import DeliveryActivities
from activities.flow_control import FRESH
from domain.activity_contract import HELD_BACK, AttemptProgress
from domain.endpoints import Endpoint
from domain.flow import RateLimit, SlotAnswer, SlotRequest
from domain.records import AttemptRecord
from tests.conftest import free_port
from tests.receiver import OK, BackgroundServer, Receiver, Reply, error
from tests.unit.test_interrupted_runs import RETRIES, ReportsTaken, _activities, _endpoint


class SlotsIn:
    """An endpoint's schedule that fixes each slot when asked, `after` seconds on (or the asker's
    `lead`, if longer), and whose answers take the next of `answers_take` seconds to come back."""

    def __init__(self, after: float, answers_take: list[float], *, graced: bool = True) -> None:
        self._after = after
        self._answers_take = answers_take
        self._graced = graced  # False: a schedule of the release before, whose slots had no grace
        self.questions: list[tuple[datetime, SlotRequest]] = []
        self.answers: list[SlotAnswer] = []

    async def ask(self, endpoint_id: str, request: SlotRequest, held_before: int) -> SlotAnswer:
        asked_at = datetime.now(UTC)
        self.questions.append((asked_at, request))
        go_at = asked_at + max(timedelta(seconds=self._after), request.lead)
        grace = RateLimit(per_second=2).start_grace  # the endpoints' here
        answer = (
            SlotAnswer(go_at=go_at, start_by=go_at + grace, decided_at=asked_at)
            if self._graced
            else SlotAnswer(go_at=go_at)
        )
        self.answers.append(answer)
        await asyncio.sleep(self._answers_take.pop(0))
        return answer


class ReadsTimed(ReportsTaken):
    """The endpoint, and when each read of it was asked."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self.reads: list[datetime] = []

    async def for_delivery(self, endpoint_id: str, seen_version: int | None = None) -> Endpoint | None:
        self.reads.append(datetime.now(UTC))
        return await super().for_delivery(endpoint_id, seen_version)


@dataclass
class LimitedEndpoint:
    """A delivery's activities for an endpoint limited to 2/s whose receiver listens on 127.0.0.1."""

    activities: DeliveryActivities
    registry: ReadsTimed
    receiver: Receiver
    url: str

    def posts(self) -> int:
        return len(self.receiver.requests(self.url))


@asynccontextmanager
async def limited_endpoint(schedule: SlotsIn, reply: Reply = OK) -> AsyncIterator[LimitedEndpoint]:
    receiver = Receiver()
    async with BackgroundServer(receiver, free_port()) as server, httpx.AsyncClient() as http:
        receiver.base_url = server.url
        url = receiver.url(reply)
        registry = ReadsTimed(_endpoint(url=url, rate_limit=RateLimit(per_second=2)))
        activities = _activities(http, registry)
        activities._schedules = lambda _account: schedule  # type: ignore[assignment,return-value]
        yield LimitedEndpoint(activities, registry, receiver, url)


async def test_a_post_that_would_begin_past_its_slots_grace_is_not_made_and_its_next_slot_can_be_taken() -> None:
    # The first answer comes back 0.3 s after its slot (a busy schedule), the next at once.
    schedule = SlotsIn(after=0, answers_take=[0.3, 0.0])
    async with limited_endpoint(schedule) as endpoint:
        with pytest.raises(ApplicationError) as missed:
            await ActivityEnvironment().run(endpoint.activities.deliver_webhook, RETRIES)
        sent_after_missed = endpoint.posts()
        held = AttemptProgress.model_validate(missed.value.details[0])
        next_run = RETRIES.model_copy(update={"resume": held})
        record = await ActivityEnvironment().run(endpoint.activities.deliver_webhook, next_run)

    assert (missed.value.type, sent_after_missed) == (HELD_BACK, 0)
    assert re.fullmatch(
        r"Held back: the POST would have begun \d+ ms after its rate-limit slot's grace: it asks for another slot",
        missed.value.message,
    )
    assert (held.attempts, held.held, held.slots_missed) == (1, 1, 1)  # no POST counted; a known run
    assert missed.value.next_retry_delay is not None and missed.value.next_retry_delay < timedelta(seconds=1)
    # The next question leaves the time the last answer took: its slot comes once it can be taken.
    [first, second] = [request for _, request in schedule.questions]
    assert first.lead < timedelta(seconds=0.3) <= second.lead
    assert isinstance(record, AttemptRecord) and record.succeeded
    assert endpoint.posts() == 1


async def test_a_slot_ahead_is_read_for_just_before_it_and_its_post_begins_within_its_grace() -> None:
    """The read serves a POST begun within FRESH_SECONDS of it (a change is answered no sooner),
    so it need not come between the slot and the POST, where it made POSTs late."""
    schedule = SlotsIn(after=0.8, answers_take=[0.0])
    async with limited_endpoint(schedule) as endpoint:
        record = await ActivityEnvironment().run(endpoint.activities.deliver_webhook, RETRIES)

    [answer] = schedule.answers
    assert answer.go_at and answer.start_by
    [_, read_for_slot] = endpoint.registry.reads  # the run's first read, then the one for its slot
    assert answer.start_by - FRESH <= read_for_slot < answer.go_at  # fresh until the grace ends
    assert isinstance(record, AttemptRecord)
    assert answer.go_at <= record.started_at <= answer.start_by  # never before its slot
    assert endpoint.posts() == 1


async def test_a_delivery_that_missed_three_slots_since_its_last_post_takes_the_next_one_late() -> None:
    """A worker or server slow enough to miss every slot (answers and reads slower than the lead
    and the grace allow) must not hold a delivery back for good: the fourth slot is read for after
    it comes and begun when it can be."""
    # In time, so the read could come before the slot: after three misses it comes after.
    schedule = SlotsIn(after=0.8, answers_take=[0.0])
    missed_three = AttemptProgress(attempts=1, held=3, slots_missed=3)
    async with limited_endpoint(schedule) as endpoint:
        record = await ActivityEnvironment().run(
            endpoint.activities.deliver_webhook, RETRIES.model_copy(update={"resume": missed_three})
        )

    [answer] = schedule.answers
    [_, read_for_slot] = endpoint.registry.reads
    assert answer.go_at and read_for_slot > answer.go_at  # read after the slot, as before the grace
    assert isinstance(record, AttemptRecord) and record.succeeded and record.started_at > answer.go_at
    assert endpoint.posts() == 1


async def test_a_slot_from_a_schedule_of_the_release_before_is_read_for_after_it_comes() -> None:
    """Such a slot has no grace and may be up to 2 s away: read for before it, a POST could go
    to an endpoint deleted, its delete answered, while the delivery waited (CONTRACT §1)."""
    schedule = SlotsIn(after=0.6, answers_take=[0.0], graced=False)
    async with limited_endpoint(schedule) as endpoint:
        record = await ActivityEnvironment().run(endpoint.activities.deliver_webhook, RETRIES)

    [answer] = schedule.answers
    [_, read_for_slot] = endpoint.registry.reads
    assert answer.go_at and read_for_slot >= answer.go_at
    assert isinstance(record, AttemptRecord) and record.succeeded and endpoint.posts() == 1


async def test_a_post_made_ends_the_count_of_slots_missed_in_a_row() -> None:
    """The way out after three misses is for a delivery that cannot take its slots; one that
    POSTed could, and its next retry's slots are kept to their grace again."""
    schedule = SlotsIn(after=0.3, answers_take=[0.0])
    missed_two = AttemptProgress(attempts=1, held=2, slots_missed=2)
    async with limited_endpoint(schedule, error(500)) as endpoint:
        with pytest.raises(ApplicationError) as failed:
            await ActivityEnvironment().run(
                endpoint.activities.deliver_webhook, RETRIES.model_copy(update={"resume": missed_two})
            )

    after = AttemptProgress.model_validate(failed.value.details[1])  # after the POST's record
    assert (endpoint.posts(), after.attempts, after.slots_missed) == (1, 2, 0)
