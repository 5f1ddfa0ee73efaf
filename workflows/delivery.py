"""One event delivered to one endpoint: the workflow whose history is the delivery log."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypedDict

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError, is_cancelled_exception
from temporalio.exceptions import CancelledError as ActivityCancelled
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from activities.deliver_webhook import DeliveryActivities
    from domain.activity_contract import (
        ATTEMPT_INTERRUPTED,
        ATTEMPT_TIMEOUT_SECONDS,
        DELIVERY_FAILED,
        ENDPOINT_DELETED,
        ENDPOINT_DISABLED,
        FORBIDDEN_DESTINATION,
        HEARTBEAT_TIMEOUT_SECONDS,
        HELD_BACK,
        QUEUED_IN_ORDER,
        RETRIES_STOPPED_BY_DISABLE,
        RUNS_LOST,
        AttemptInput,
        AttemptProgress,
    )
    from domain.delivery import DeliveryInput
    from domain.events import OPERATIONAL_EVENTS
    from domain.flow import FIFO_RECHECK_FIRST, TURN_CAME
    from domain.records import SAMPLE_KINDS, AttemptRecord, DeliveryKind, DeliveryRecord, DeliveryResult
    from domain.wire import order_fields, wire_body
    from workflows import search_attributes as sa


# Patches of DeliveryWorkflow's commands since v0.2.0 (see README, "Releasing"). This one:
# a delivery that is not a first-attempt 200 indexes its status code, keeps its error in
# its memo, and, when it failed, fails its run.
OUTCOME_INDEXED = "outcome-indexed"

# And this one: a delivery's retries run as a second activity at a lower priority than
# first attempts (RETRY_PRIORITY), after the first attempt's own activity failed.
RETRIES_BEHIND_FIRST_ATTEMPTS = "retries-behind-first-attempts"
RETRY_PRIORITY = 3
# And this one: the first attempt runs as a local activity inside the workflow's task, so a
# first-attempt success costs no activity task (6 history events instead of 11); any failure
# goes on in the regular activity, as the retries do above. Runs of this shape index their
# outcome (OUTCOME_INDEXED) and run their retries behind first attempts without asking again:
# a version marker each would cost a billed Action (see README, "Temporal Cloud Actions").
# Runs started since DeliveryInput.first_attempt_local take this shape from their input,
# without asking (in_current_shape).
FIRST_ATTEMPT_LOCAL = "first-attempt-local"
DEFAULT_PRIORITY = 3  # Temporal's, for a run started without one
# And this one: a delivery cancelled while an attempt runs (the Web UI's Cancel, `temporal
# workflow cancel`) ends cancelled. Before it, a cancel during the retries ended the delivery
# failed, "lost with their workers", and one during a first attempt run as an activity (runs
# before FIRST_ATTEMPT_LOCAL) was taken for its worker's shutdown and the retries went on.
# Asked only of a run that was cancelled.
CANCELS_END_DELIVERIES = "cancels-end-deliveries"
# And this one: a delivery queued behind another of its order on a FIFO endpoint waits here,
# woken by the endpoint's flow workflow (TURN_CAME) when the one ahead ends, instead of in its
# activity's retries, which asked again at up to 30 s intervals and so, after a stall, drained
# an order at up to 30 s a delivery. Only ordered deliveries ask, and only those started before
# DeliveryInput.waits_for_turn (the later ones take the shape from their input).
TURN_SIGNALLED = "turn-signalled"

# Deliveries whose failure raises DELIVERY_FAILED: all but tests (CONTRACT §11) and their
# re-runs (DeliveryInput.rerun_of_kind; re-runs from before that field was, do). A first
# connection that fails tells the account's other endpoints its new one does not answer.
RAISES_NOTICES = frozenset(
    {DeliveryKind.EVENT, DeliveryKind.FIRST_CONNECTION, DeliveryKind.RERUN, DeliveryKind.RECOVERY}
)


@workflow.defn
class DeliveryWorkflow:
    def __init__(self) -> None:
        self._turn_came = False

    @workflow.signal(name=TURN_CAME)
    def turn_came(self) -> None:
        """The delivery ahead of this one in its order ended (sent by the endpoint's flow workflow)."""
        self._turn_came = True

    @workflow.run
    async def run(self, delivery: DeliveryInput) -> DeliveryRecord:
        attempt_input = AttemptInput(
            delivery_id=delivery.delivery_id,
            message_id=delivery.message_id,
            account=delivery.account,
            endpoint_id=delivery.endpoint_id,
            body=wire_body(delivery.event),
            max_attempts=delivery.max_attempts,
            # A re-run of an event is skipped like the event (CONTRACT §9: until re-enabled).
            skip_if_disabled=delivery.original_kind not in SAMPLE_KINDS,
            registry_version=delivery.registry_version,
            order_id=order_fields(delivery.event)[0] if delivery.kind == DeliveryKind.EVENT else None,
            notify_failure=delivery.original_kind in RAISES_NOTICES and delivery.event.event not in OPERATIONAL_EVENTS,
            endpoint_url=delivery.endpoint_url,
        )
        attempt: AttemptRecord | None
        error: str | None = None
        result = DeliveryResult.SUCCESS
        in_activity = delivery.attempts_in_activity
        local_first = not in_activity and (delivery.first_attempt_local or workflow.patched(FIRST_ATTEMPT_LOCAL))
        try:
            if in_activity:
                # Its endpoint is limited, ordered, paused or failing (DeliveryInput.attempts_in_activity).
                attempt = await self._retries(attempt_input, _retry_priority(delivery), in_shape=True, may_queue=True)
            else:
                attempt = await self._first_attempt_then_retries(attempt_input, delivery, local_first)
            retries = attempt.number - 1
        except (ActivityError, ApplicationError) as failure:
            if _cancelled(failure):
                raise
            cause = _cause(failure)
            attempt, error = _failed_attempt(cause, failure)
            retries = attempt.number - 1 if attempt else 0
            skipped = isinstance(cause, ApplicationError) and cause.type == ENDPOINT_DISABLED
            result = DeliveryResult.SKIPPED if skipped else DeliveryResult.FAILED if error else DeliveryResult.SUCCESS

        record = delivery.record(
            attempt,
            result=result,
            error=error,
            retries=retries,
            date=workflow.info().workflow_start_time,
            date_end=workflow.now(),
        )
        new_shape = self._record_outcome(record, indexed=in_activity or local_first)
        deliveries = workflow.metric_meter().create_counter("webhook_deliveries", "Deliveries ended")
        deliveries.add(1, {"event": record.event.value, "result": record.result.value})
        # Shown in the Web UI beside the summary, so the run reads like its log line.
        workflow.set_current_details(f"{record.result.value} after {retries} retries: {error or 'delivered'}")
        # A failed delivery fails its run, so the Web UI's status filter, its failure counts and
        # Temporal's workflow-failure metrics see it; the record travels in the failure.
        if record.result == DeliveryResult.FAILED and new_shape:
            raise ApplicationError(
                record.error or "delivery failed",
                record.model_dump(mode="json"),
                type=DELIVERY_FAILED,
                non_retryable=True,
            )
        return record

    async def _first_attempt_then_retries(
        self, attempt_input: AttemptInput, delivery: DeliveryInput, local_first: bool
    ) -> AttemptRecord:
        """A first attempt of its own, at the delivery's priority (first attempts of every
        delivery go ahead of everyone's retries); if it fails, the retries' activity, after
        the first failure's delay."""
        try:
            if local_first:
                return await self._local_first_attempt(attempt_input)
            return await self._attempts(attempt_input, _ONCE, Priority.default)
        except (ActivityError, ApplicationError) as first:
            if _cancelled(first):
                raise
            resume = _resumable(_cause(first))
            if resume is None or not (local_first or workflow.patched(RETRIES_BEHIND_FIRST_ATTEMPTS)):
                raise
            if (wait := _next_retry_delay(_cause(first))) is not None:
                await workflow.sleep(wait)
            retries_input = attempt_input.model_copy(update={"resume": resume, "prior_runs": 1})
            return await self._retries(retries_input, _retry_priority(delivery), delivery.waits_for_turn)

    @staticmethod
    async def _attempts(attempt: AttemptInput, policy: RetryPolicy, priority: Priority) -> AttemptRecord:
        return await workflow.execute_activity_method(
            DeliveryActivities.deliver_webhook,
            attempt,
            start_to_close_timeout=timedelta(seconds=ATTEMPT_TIMEOUT_SECONDS),
            heartbeat_timeout=timedelta(seconds=HEARTBEAT_TIMEOUT_SECONDS),
            retry_policy=policy,
            # Priority.default (unset): the activity inherits the delivery's priority and fairness key.
            priority=priority,
        )

    async def _retries(
        self, attempt: AttemptInput, priority: Priority, in_shape: bool, *, may_queue: bool = False
    ) -> AttemptRecord:
        """The retries' activity. A delivery queued behind another of its order waits here
        between its runs, until its turn came or, should no word come, until the time its
        schedule said to ask again. `in_shape`: started in that shape (DeliveryInput.waits_for_turn).
        `may_queue`: its first POST is made here, so it may still have to queue (an endpoint's
        ordering is read by the activity); else only one handed over in its queue waits."""
        ordered = may_queue or (attempt.resume is not None and attempt.resume.ordered)
        if not (ordered and (in_shape or workflow.patched(TURN_SIGNALLED))):
            return await self._attempts(attempt, _RETRIES, priority)
        attempt = attempt.model_copy(update={"turn_signalled": True})
        while True:
            # A turn that came before this run asks is in the schedule's answer; one that comes
            # later finds the flag set, even if this run is still asking.
            self._turn_came = False
            try:
                return await self._attempts(attempt, _RETRIES, priority)
            except ActivityError as failure:
                queued = _queued(failure.cause)
                if queued is None:
                    raise
            progress, runs, ask_again = queued
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(lambda: self._turn_came, timeout=ask_again, timeout_summary="queued")
            attempt = attempt.model_copy(update={"resume": progress, "prior_runs": runs})

    @staticmethod
    async def _local_first_attempt(attempt: AttemptInput) -> AttemptRecord:
        """The first POST, inside this workflow task: no activity task to schedule, dispatch and
        report. Its marker is its record. A worker lost meanwhile loses the workflow task too;
        the next worker runs it again (README, "Retries": the at-least-once window)."""
        return await workflow.execute_local_activity_method(
            DeliveryActivities.deliver_webhook,
            attempt,
            # As long as the activity's: one POST (at most WEBHOOKS_HTTP_TIMEOUT) and the
            # registry and flow-schedule calls around it end well within it. The SDK keeps the
            # workflow task alive past its own timeout (10 s) while the POST runs; no retry
            # runs locally (maximum_attempts=1, so local_retry_threshold never applies).
            start_to_close_timeout=timedelta(seconds=ATTEMPT_TIMEOUT_SECONDS),
            retry_policy=_ONCE,
        )

    @staticmethod
    def _record_outcome(record: DeliveryRecord, *, indexed: bool = False) -> bool:
        """Index how the delivery ended, for the log's filters and rows; whether the run ends
        the way this version ends it (versioned: runs started by v0.2.0 end as they did).
        `indexed`: the run's shape postdates OUTCOME_INDEXED, which it need not ask for."""
        status = record.response.status_code if record.response else None
        if record.result == DeliveryResult.SUCCESS and record.retry == 0 and status == 200:
            # The common case: a completed run without a result says it all, and indexing
            # it would cost every such delivery history events and a visibility write.
            return True
        if indexed or workflow.patched(OUTCOME_INDEXED):
            workflow.upsert_search_attributes(sa.outcome_updates(record))
            if record.error is not None:
                workflow.upsert_memo(sa.outcome_memo(record))
            return True
        if record.result != DeliveryResult.SUCCESS or record.retry > 0:
            workflow.upsert_search_attributes(sa.outcome_updates(record, with_status=False))
        return False


# A first attempt: one run; a failure goes on in the retries' activity.
_ONCE = RetryPolicy(maximum_attempts=1)

# Failures that end a delivery without a (further) POST.
STOPS = frozenset({ENDPOINT_DELETED, ENDPOINT_DISABLED, RETRIES_STOPPED_BY_DISABLE, RUNS_LOST})

# The retries' activity. It sets each failure's next_retry_delay itself (backoff from the
# worker's settings, the receiver's Retry-After, or the wait its endpoint's flow control asks
# for) and ends the retries itself: at the delivery's count of POSTs, or after
# LOST_RUNS_ALLOWED runs lost with their worker. Runs held back by flow control are unbounded.
# Each of these is raised non-retryable too, as is RETRIES_STOPPED_BY_DISABLE, which came later:
# the list is part of the command that schedules the activity.
_RETRIES = RetryPolicy(
    maximum_attempts=0,
    non_retryable_error_types=[ENDPOINT_DELETED, ENDPOINT_DISABLED, FORBIDDEN_DESTINATION, RUNS_LOST],
)


def _retry_priority(delivery: DeliveryInput) -> Priority:
    """The retries' activity runs behind every delivery's first attempts, in the delivery's account."""
    own = workflow.info().priority.priority_key or DEFAULT_PRIORITY
    return Priority(priority_key=max(own, RETRY_PRIORITY), fairness_key=delivery.account)


def _cancelled(failure: ActivityError | ApplicationError) -> bool:
    """The attempt ended because its delivery was cancelled, not because its worker stopped:
    the run ends cancelled (the SDK does so for a cancellation raised after a cancel request)."""
    cancel_requested = workflow.cancellation_reason() is not None
    return cancel_requested and is_cancelled_exception(failure) and workflow.patched(CANCELS_END_DELIVERIES)


def _cause(failure: ActivityError | ApplicationError) -> BaseException | None:
    """Why an attempt failed. An activity's failure wraps it; a local activity's application
    failure is raised as it is (a local activity's timeout still comes wrapped)."""
    return failure.cause if isinstance(failure, ActivityError) else failure


def _resumable(cause: BaseException | None) -> AttemptProgress | None:
    """What the first attempt's run left for the retries to go on from; None when it ended the delivery."""
    if isinstance(cause, ApplicationError):
        if cause.non_retryable:
            return None
        if cause.type in (HELD_BACK, ATTEMPT_INTERRUPTED) and cause.details:
            return AttemptProgress.model_validate(cause.details[0])
        if cause.type == DELIVERY_FAILED and cause.details:
            if len(cause.details) > 1:
                return AttemptProgress.model_validate(cause.details[1])
            last = AttemptRecord.model_validate(cause.details[0])
            return AttemptProgress(attempts=last.number, last=last)
        return AttemptProgress()  # an unexpected error: what it did is unknown, like a run lost
    if isinstance(cause, ActivityTimeout):  # lost with its worker: go on from its last heartbeat
        return AttemptProgress.from_details(cause.last_heartbeat_details)
    if isinstance(cause, ActivityCancelled):  # not by a cancel of the delivery: its worker shut down, as if lost
        return AttemptProgress()
    return None


def _queued(cause: BaseException | None) -> tuple[AttemptProgress, int, timedelta] | None:
    """A run that ended queued behind another delivery of its order: its progress, the runs
    made so far and when to ask again without word of the turn. None for any other end."""
    if isinstance(cause, ApplicationError) and cause.type == QUEUED_IN_ORDER and len(cause.details) == 2:
        progress = AttemptProgress.model_validate(cause.details[0])
        return progress, int(cause.details[1]), cause.next_retry_delay or FIFO_RECHECK_FIRST
    return None


def _next_retry_delay(cause: BaseException | None) -> timedelta | None:
    return cause.next_retry_delay if isinstance(cause, ApplicationError) else None


def _failed_attempt(cause: BaseException | None, failure: BaseException) -> tuple[AttemptRecord | None, str | None]:
    """The last POST's record: the failure's details, or, when the last attempt was
    lost with its worker, the heartbeat it left."""
    if isinstance(cause, ApplicationError):
        attempt = AttemptRecord.model_validate(cause.details[0]) if cause.details else None
        # A stop (endpoint deleted or disabled, runs lost) is explained by its own message; it
        # carries the last POST's record so the log keeps the attempts made before it.
        if cause.type in STOPS or attempt is None:
            return attempt, cause.message
        return attempt, attempt.error or cause.message
    lost = f"Delivery attempts were lost with their workers: {cause or failure}"
    if isinstance(cause, ActivityTimeout):
        last = AttemptProgress.from_details(cause.last_heartbeat_details).last
        if last is not None:
            return last, last.error if not last.succeeded else None
    return None, lost


class DeliveryStartOptions(TypedDict):
    """How every delivery is started, by a client or by another workflow."""

    id: str
    id_reuse_policy: WorkflowIDReusePolicy
    search_attributes: TypedSearchAttributes
    memo: Mapping[str, Any]
    static_summary: str
    priority: Priority


# Task-queue priority (1 is served first, Temporal's default is 3): what an event, a new
# endpoint or a person's test asks for now goes ahead of re-runs and bulk recoveries.
PRIORITY_KEYS: Mapping[DeliveryKind, int] = {
    DeliveryKind.EVENT: 2,
    DeliveryKind.FIRST_CONNECTION: 2,
    DeliveryKind.TEST: 2,
    DeliveryKind.RERUN: 4,
    DeliveryKind.RECOVERY: 4,
}


def delivery_start_options(delivery: DeliveryInput, memo: Mapping[str, Any] | None = None) -> DeliveryStartOptions:
    return DeliveryStartOptions(
        id=delivery.delivery_id,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,  # a delivery id names one delivery, ever
        search_attributes=sa.delivery_search_attributes(delivery),
        memo={**sa.delivery_memo(delivery), **(memo or {})},
        static_summary=sa.delivery_summary(delivery),
        # The fairness key is the account: within one priority, the server hands out each
        # account's tasks in turn, so one account's backlog does not delay another's
        # deliveries. The activity inherits both keys (measured: see README, Fairness).
        priority=Priority(priority_key=PRIORITY_KEYS[delivery.kind], fairness_key=delivery.account),
    )


def in_current_shape(delivery: DeliveryInput) -> DeliveryInput:
    """The input a delivery starts with: it names the shape the run takes, so that run asks
    no version marker for it (see DeliveryInput.first_attempt_local)."""
    return delivery.model_copy(update={"first_attempt_local": True, "waits_for_turn": True})


async def start_delivery_child(delivery: DeliveryInput) -> None:
    """Start a delivery from another workflow; it outlives its starter.

    An existing delivery with the same id means it was started already,
    which is what the caller wanted.
    """
    with contextlib.suppress(WorkflowAlreadyStartedError):
        child = await workflow.start_child_workflow(
            DeliveryWorkflow.run,
            in_current_shape(delivery),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            **delivery_start_options(delivery),
        )
        # The starter does not wait for the delivery, whose own history is its log; a failed
        # one still tells its parent, and that answer is taken here so it is not left unread.
        child.add_done_callback(_outcome_read)


def _outcome_read(child: asyncio.Future[DeliveryRecord]) -> None:
    if not child.cancelled():
        child.exception()
