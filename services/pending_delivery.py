"""Where a running delivery stands, for its log record: the POSTs made, the last one, the next."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.exceptions import ActivityError, FailureError

from domain.activity_contract import AttemptProgress
from domain.records import AttemptRecord


@dataclass
class PendingState:
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last: AttemptRecord | None = None
    error: str | None = None  # when the last attempt left no record


async def pending_state(client: Client, description: WorkflowExecutionDescription) -> PendingState:
    """Where a running delivery stands: the POSTs its activity made, the last one, the next."""
    state = PendingState()
    for activity in description.raw_description.pending_activities:
        if activity.HasField("next_attempt_schedule_time"):
            state.next_attempt_at = activity.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
        progress = AttemptProgress()
        if activity.HasField("heartbeat_details"):
            details = await client.data_converter.decode(activity.heartbeat_details.payloads)
            progress = AttemptProgress.from_details(details)
        state.attempts, state.last = progress.attempts, progress.last
        if progress.last is None and activity.HasField("last_failure"):
            state.error = _reason(await client.data_converter.decode_failure(activity.last_failure))
    if state.last is None:
        await _first_attempt(client, description, state)
    return state


async def _first_attempt(client: Client, description: WorkflowExecutionDescription, state: PendingState) -> None:
    """Between a failed first attempt and its retries' first run, the history says where the
    delivery stands: the first attempt's failure, and the timer until the retries start."""
    handle = client.get_workflow_handle(description.id, run_id=description.run_id)
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_failed_event_attributes"):
            recorded = event.activity_task_failed_event_attributes.failure
        elif event.marker_recorded_event_attributes.HasField("failure"):  # a first attempt run locally
            recorded = event.marker_recorded_event_attributes.failure
        else:
            recorded = None
        if recorded is not None:
            failure: BaseException = await client.data_converter.decode_failure(recorded)
            if isinstance(failure, ActivityError) and failure.cause is not None:
                failure = failure.cause
            details = getattr(failure, "details", None) or []
            progress = AttemptProgress.from_details(details)
            if progress.handed_over and event.HasField("marker_recorded_event_attributes"):
                continue  # the local run made no POST and left it to the activity, whose failures say why it waits
            if progress.last is None and details:
                progress = AttemptProgress.from_details([{"attempts": 1, "last": details[0]}])
            state.attempts, state.last = progress.attempts, progress.last
            state.error = None if progress.last else _reason(failure)
            # Until the workflow starts its timer, the failure says when the retries begin.
            wait = getattr(failure, "next_retry_delay", None)
            if wait is not None:
                state.next_attempt_at = event.event_time.ToDatetime(tzinfo=UTC) + wait
        elif event.HasField("timer_started_event_attributes"):
            fires_in = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            state.next_attempt_at = event.event_time.ToDatetime(tzinfo=UTC) + fires_in


def _reason(failure: BaseException) -> str:
    """What a failure says, without the type Temporal prefixes to its text ("HeldBack: Held back: …")."""
    return failure.message if isinstance(failure, FailureError) else str(failure)
