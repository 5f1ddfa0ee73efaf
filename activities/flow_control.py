"""Before a POST: wait for the endpoint's throttle, rate limit and FIFO queue, without spending an attempt.

A wait of a moment is slept inside the activity; a longer one ends the run
held back (`HELD_BACK`), retried by Temporal when the wait is over, so no
worker holds a slot and a restart of every process loses nothing. A delivery
queued behind another of its order ends its run (`QUEUED_IN_ORDER`) when its
workflow waits for its turn itself, woken by the endpoint's flow workflow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from domain.activity_contract import HELD_BACK, QUEUED_IN_ORDER, AttemptInput, AttemptProgress
from domain.endpoints import Endpoint
from domain.flow import Ordering, SlotAnswer, SlotRequest

# A delivery told to wait behind the same one this often asks whether that one still runs.
CHECK_HEAD_AFTER_HOLDS = 3


class FlowSchedule(Protocol):
    """An account's endpoints' shared schedules (services.flow.EndpointFlow)."""

    async def ask(self, endpoint_id: str, request: SlotRequest, held_before: int) -> SlotAnswer: ...

    async def release(self, endpoint_id: str, order_id: str, delivery_id: str) -> None: ...

    async def release_if_ended(self, endpoint_id: str, order_id: str, delivery_id: str) -> bool: ...


FlowSchedules = Callable[[str], FlowSchedule]


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
    schedule: FlowSchedule, endpoint: Endpoint, attempt: AttemptInput, progress: AttemptProgress, *, may_ask: bool
) -> bool:
    """Return when the POST may start, and whether the schedule was asked for that (time passed
    since the endpoint was read: the ask, and the wait for a slot up to 2 s); raise HeldBack when
    the POST is more than a moment away, and NeedsSchedule when the schedule must be asked and
    `may_ask` is false.

    A delivery's first attempt runs as a local activity, inside its workflow's task: waiting
    there for the schedule's answer and its slot (up to 2 s) kept the workflow busy in the
    worker's cache, where a full cache cancelled the attempt and its task ran it again later
    (measured: POSTs to a limited endpoint stalled 3-4 s after its first burst, 0.66-0.81 of
    the limit). So only the regular activity, holding an activity slot, asks and waits."""
    now = datetime.now(UTC)
    if endpoint.throttled_until is not None and endpoint.throttled_until > now:
        raise HeldBack(endpoint.throttled_until, f"the receiver asked for a pause until {endpoint.throttled_until}")
    # FIFO holds back a delivery's first POST; once it POSTed, it heads its order until it ends.
    queue = attempt.order_id if is_ordered(endpoint, attempt) and progress.attempts == 0 else None
    if queue is None and endpoint.rate_limit is None:
        return False
    if not may_ask:
        raise NeedsSchedule
    request = SlotRequest(
        delivery_id=attempt.delivery_id,
        rate_limit=endpoint.rate_limit,
        order_id=queue,
        turn_signalled=attempt.turn_signalled,
    )
    answer = await schedule.ask(endpoint.id, request, progress.held)
    # The delivery ahead may have ended without saying so (terminated, or its endpoint's
    # ordering was switched off meanwhile); then it no longer holds the order.
    stuck = queue is not None and answer.behind is not None and progress.held >= CHECK_HEAD_AFTER_HOLDS
    if stuck and queue and answer.behind and await schedule.release_if_ended(endpoint.id, queue, answer.behind):
        answer = await schedule.ask(endpoint.id, request, progress.held)
    if answer.go_at is not None:
        delay = (answer.go_at - datetime.now(UTC)).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        return True
    assert answer.ask_again_at is not None
    if answer.behind is None:
        raise HeldBack(answer.ask_again_at, "the endpoint's rate limit")
    why = f"queued behind {answer.behind} for order {queue}"
    raise (QueuedInOrder if answer.turn_told else HeldBack)(answer.ask_again_at, why)


def log_held(attempt: AttemptInput, held: HeldBack) -> None:
    activity.logger.info("POST %s held back until %s: %s", attempt.delivery_id, held.until.isoformat(), held.why)
