"""Before a POST: wait for the endpoint's throttle, rate limit and FIFO queue, without spending an attempt.

A wait of a moment is slept inside the activity; a longer one ends the run
held back (`HELD_BACK`), retried by Temporal when the wait is over, so no
worker holds a slot and a restart of every process loses nothing. A delivery
queued behind another of its order ends its run (`QUEUED_IN_ORDER`) when its
workflow waits for its turn itself, woken by the endpoint's flow workflow.

A rate-limit slot is begun within its grace (`domain.flow.RateLimit.start_grace`) or not at
all: the delivery asks for a slot no sooner than it can take it, reads the endpoint
again just before it, and a run that gets there late anyway gives the slot up and
asks for another (`SlotMissed`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from domain.activity_contract import HELD_BACK, QUEUED_IN_ORDER, AttemptInput, AttemptProgress
from domain.endpoints import FRESH_SECONDS, Endpoint
from domain.flow import MAX_LEAD, Ordering, SlotAnswer, SlotRequest

# A delivery told to wait behind the same one this often asks whether that one still runs.
CHECK_HEAD_AFTER_HOLDS = 3
# A read of the registry serves a POST begun within this of when it was asked.
FRESH = timedelta(seconds=FRESH_SECONDS)
# Slots a delivery may miss since its last POST before it takes one late rather than miss
# again: on a worker or server whose answers and reads together take longer than the lead (at
# most MAX_LEAD) and the slot's grace, or whose reads take longer than FRESH, it would miss
# every one.
MISSES_BEFORE_LATE_START = 3
# Questions and reads remembered for the lead: enough that one quick answer after a slow
# spell does not shorten it at once.
LATENCIES_KEPT = 32


class FlowSchedule(Protocol):
    """An account's endpoints' shared schedules (services.flow.EndpointFlow)."""

    async def ask(self, endpoint_id: str, request: SlotRequest, held_before: int) -> SlotAnswer: ...

    async def release(self, endpoint_id: str, order_id: str, delivery_id: str) -> None: ...

    async def release_if_ended(self, endpoint_id: str, order_id: str, delivery_id: str) -> bool: ...


FlowSchedules = Callable[[str], FlowSchedule]


class Latencies:
    """How long this worker's recent answers from schedules took to come back, and its reads
    of the registry.

    Between a slot's instant, fixed when the schedule answers, and its POST, the answer comes
    back and the endpoint is read again: far longer than a slot's grace on a busy worker. So a
    delivery asks for a slot no sooner than the longest of each lately took (`lead`)."""

    def __init__(self) -> None:
        self._answers: deque[float] = deque(maxlen=LATENCIES_KEPT)
        self._reads: deque[float] = deque(maxlen=LATENCIES_KEPT)

    def lead(self) -> timedelta:
        return min(timedelta(seconds=max(self._answers, default=0.0) + max(self._reads, default=0.0)), MAX_LEAD)

    async def ask(self, schedule: FlowSchedule, endpoint_id: str, request: SlotRequest, held: int) -> SlotAnswer:
        answer = await schedule.ask(endpoint_id, request, held)
        if answer.decided_at is not None:  # a schedule of the previous release does not say
            self._answers.append(max((datetime.now(UTC) - answer.decided_at).total_seconds(), 0.0))
        return answer

    async def read(self, read: Callable[[], Awaitable[Endpoint]]) -> Endpoint:
        began = time.monotonic()
        endpoint = await read()
        self._reads.append(time.monotonic() - began)
        return endpoint


class HeldBack(Exception):
    """The delivery may not POST before `until`; `why` says what holds it."""

    failure_type = HELD_BACK
    ends_activity = False  # the activity is retried at `until`

    def __init__(self, until: datetime, why: str) -> None:
        super().__init__(why)
        self.until = until
        self.why = why

    def failure(self, now: datetime, progress: AttemptProgress, run: int) -> ApplicationError:
        """The run's end, with the delivery's progress and the runs made so far (`run`, this
        one included), so whatever runs next (this activity's retry, or the workflow) knows
        the attempts made."""
        return ApplicationError(
            f"Held back: {self.why}",
            progress.model_dump(mode="json"),
            run,
            type=self.failure_type,
            non_retryable=self.ends_activity,
            next_retry_delay=max(self.until - now, timedelta(milliseconds=10)),
            category=ApplicationErrorCategory.BENIGN,
        )


class SlotMissed(HeldBack):
    """The POST would begin past its slot's grace: it is not made, and the next run asks for
    another slot at once (the one missed stays counted, so no window holds more)."""

    def __init__(self, late: timedelta) -> None:
        late_ms = f"{late.total_seconds() * 1000:.0f} ms"
        why = f"the POST would have begun {late_ms} after its rate-limit slot's grace: it asks for another slot"
        super().__init__(datetime.now(UTC), why)


class QueuedInOrder(HeldBack):
    """Another delivery of the same order goes first. The activity ends; its workflow runs it
    again when the flow workflow signals that the turn came, or at `until` should no word come."""

    failure_type = QUEUED_IN_ORDER
    ends_activity = True


def is_ordered(endpoint: Endpoint, attempt: AttemptInput) -> bool:
    """Events' own deliveries queue per order on a FIFO endpoint; first connections, tests and re-runs do not."""
    return endpoint.ordering == Ordering.FIFO and attempt.order_id is not None


class NeedsSchedule(Exception):
    """The POST must ask the endpoint's schedule first, which a local activity does not do."""

    @staticmethod
    def failure(progress: AttemptProgress) -> ApplicationError:
        """The local run's end: the workflow goes on in the regular activity at once (no
        next_retry_delay, so no timer), from this progress (no hold counted: none was asked)."""
        return ApplicationError(
            "Handed to the delivery activity: the endpoint's schedule decides when it POSTs",
            progress.model_copy(update={"handed_over": True}).model_dump(mode="json"),
            type=HELD_BACK,
            category=ApplicationErrorCategory.BENIGN,
        )


async def wait_for_turn(
    schedule: FlowSchedule,
    endpoint: Endpoint,
    attempt: AttemptInput,
    progress: AttemptProgress,
    *,
    may_ask: bool,
    latencies: Latencies,
) -> SlotAnswer | None:
    """The schedule's slot for the POST (to be taken with `take_slot`), or None when it need not
    be asked; raise HeldBack when the POST is more than a moment away, and NeedsSchedule when
    the schedule must be asked and `may_ask` is false.

    A delivery's first attempt runs as a local activity, inside its workflow's task: waiting
    there for the schedule's answer and its slot (up to SHORT_WAIT) kept the workflow busy in the
    worker's cache, where a full cache cancelled the attempt and its task ran it again later
    (measured: POSTs to a limited endpoint stalled 3-4 s after its first burst, 0.66-0.81 of
    the limit). So only the regular activity, holding an activity slot, asks and waits."""
    now = datetime.now(UTC)
    if endpoint.throttled_until is not None and endpoint.throttled_until > now:
        raise HeldBack(endpoint.throttled_until, f"the receiver asked for a pause until {endpoint.throttled_until}")
    # FIFO holds back a delivery's first POST; once it POSTed, it heads its order until it ends.
    queue = attempt.order_id if is_ordered(endpoint, attempt) and progress.attempts == 0 else None
    if queue is None and endpoint.rate_limit is None:
        return None
    if not may_ask:
        raise NeedsSchedule
    request = SlotRequest(
        delivery_id=attempt.delivery_id,
        rate_limit=endpoint.rate_limit,
        order_id=queue,
        turn_signalled=attempt.turn_signalled,
        lead=latencies.lead() if endpoint.rate_limit else timedelta(0),
    )
    answer = await latencies.ask(schedule, endpoint.id, request, progress.held)
    # The delivery ahead may have ended without saying so (terminated, or its endpoint's
    # ordering was switched off meanwhile); then it no longer holds the order.
    stuck = queue is not None and answer.behind is not None and progress.held >= CHECK_HEAD_AFTER_HOLDS
    if stuck and queue and answer.behind and await schedule.release_if_ended(endpoint.id, queue, answer.behind):
        answer = await latencies.ask(schedule, endpoint.id, request, progress.held)
    if answer.go_at is not None:
        return answer
    assert answer.ask_again_at is not None
    if answer.behind is None:
        raise HeldBack(answer.ask_again_at, "the endpoint's rate limit")
    why = f"queued behind {answer.behind} for order {queue}"
    raise (QueuedInOrder if answer.turn_told else HeldBack)(answer.ask_again_at, why)


async def take_slot(
    answer: SlotAnswer, read: Callable[[], Awaitable[Endpoint]], latencies: Latencies, *, missed_before: int
) -> tuple[Endpoint, datetime | None]:
    """Wait for the slot; return the endpoint read again (a change made while the delivery asked
    and waited holds for its POST) and the instant the POST must begin by, if any.

    A rate-limit slot's read is made before it, not after, just soon enough to be fresh until
    the slot's grace ends: the POST then begins at the slot. A delivery that missed
    MISSES_BEFORE_LATE_START slots since its last POST (its worker or the server that slow) takes this
    one as slots without a grace are taken: read after it, begun when it can be."""
    assert answer.go_at is not None
    if answer.start_by is None or missed_before >= MISSES_BEFORE_LATE_START:
        await _sleep_until(answer.go_at)
        return await latencies.read(read), None
    await _sleep_until(answer.start_by - FRESH)
    read_at = datetime.now(UTC)
    endpoint = await latencies.read(read)
    await _sleep_until(answer.go_at)
    return endpoint, min(answer.start_by, read_at + FRESH)


async def _sleep_until(instant: datetime) -> None:
    delay = (instant - datetime.now(UTC)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)
        # The loop's clock is not the wall clock, and may wake a timer a little early: a POST
        # begun before its slot would use up the margin its window keeps.
        await _sleep_until(instant)


def log_held(attempt: AttemptInput, held: HeldBack) -> None:
    activity.logger.info("POST %s held back until %s: %s", attempt.delivery_id, held.until.isoformat(), held.why)
