"""The contract between the workflows and the activities they call.

Activity names, their inputs and answers, their time limits, what their
heartbeats carry and the failure types that end a delivery without a retry.
Workflows and activities both import it; neither knows the other's insides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, Field, ValidationError

from domain.delivery import DEFAULT_ACCOUNT
from domain.records import AttemptRecord

DELIVER_WEBHOOK = "deliver_webhook"
RECOVER_DELIVERIES = "recover_deliveries"

# Failure types of `deliver_webhook` that end a delivery at once.
ENDPOINT_DELETED = "EndpointDeleted"
FORBIDDEN_DESTINATION = "ForbiddenDestination"
# The endpoint's stored URL has a host no resolver takes (registered before the host rule).
INVALID_ENDPOINT_URL = "InvalidEndpointUrl"
# The endpoint's stored custom header value is not valid HTTP (registered before the rule).
INVALID_ENDPOINT_HEADER = "InvalidEndpointHeader"
ENDPOINT_DISABLED = "EndpointDisabled"
# The endpoint was disabled after the delivery's failed POST: its retries stop, and it failed
# (a skipped delivery is one that made no POST).
RETRIES_STOPPED_BY_DISABLE = "RetriesStoppedByDisable"
# A failed POST; retried until the delivery's attempts are spent.
DELIVERY_FAILED = "DeliveryFailed"
# Not a POST: the endpoint's throttle, rate limit or FIFO queue holds the delivery back
# until the failure's next_retry_delay. Retried without spending an attempt.
HELD_BACK = "HeldBack"
# Not a POST: the delivery is queued behind another of its order, and its workflow waits for
# its turn, as its schedule said it will be told (SlotAnswer.turn_told). Ends the activity;
# details: progress, runs so far.
QUEUED_IN_ORDER = "QueuedInOrder"
# A run that Temporal, the registry or a flow schedule failed (not the endpoint): retried,
# carrying the delivery's progress.
ATTEMPT_INTERRUPTED = "AttemptInterrupted"
# More activity runs were lost with their workers than LOST_RUNS_ALLOWED.
RUNS_LOST = "RunsLost"

# The delivery activity's own time limit in Temporal; one POST must end well within it.
ATTEMPT_TIMEOUT_SECONDS = 60
# A worker that dies mid-attempt is noticed when its heartbeats stop.
HEARTBEAT_EVERY_SECONDS = 2.0
HEARTBEAT_TIMEOUT_SECONDS = 10
# Runs of the activity lost with their worker (no POST recorded) allowed beyond the delivery's attempts.
LOST_RUNS_ALLOWED = 5

RECOVERY_TIMEOUT_SECONDS = 30 * 60
RECOVERY_HEARTBEAT_TIMEOUT_SECONDS = 60
# A recovery's runs: a few for a worker lost or Temporal briefly unreachable, never forever.
RECOVERY_MAX_ATTEMPTS = 5
RECOVERY_MAX_INTERVAL_SECONDS = 10
# Failure type of `recover_deliveries` for a request no retry could mend.
INVALID_RECOVERY_REQUEST = "InvalidRecoveryRequest"


class AttemptInput(BaseModel):
    """One run of the `deliver_webhook` activity. The endpoint's secrets are looked up at send time."""

    # Activities scheduled by v0.2.0 workers, still waiting for their retries, call two
    # fields by their old names (`webhook_id`, `max_posts`).
    delivery_id: str
    message_id: Annotated[str, Field(validation_alias=AliasChoices("message_id", "webhook_id"))]  # `webhook-id`
    account: str
    endpoint_id: str
    body: str
    # POSTs this delivery may make: 1 + the endpoint's retries when enabled.
    max_attempts: Annotated[int, Field(validation_alias=AliasChoices("max_attempts", "max_posts"))]
    skip_if_disabled: bool = True  # events and their re-runs are; tests and first connections are not
    registry_version: int | None = None  # see DeliveryInput
    # Set for an event's own delivery: the order it queues behind on a FIFO endpoint.
    order_id: str | None = None
    # Whether ending failed raises DELIVERY_FAILED: not for tests (nor their re-runs), nor for a notice.
    notify_failure: bool = False
    # The URL the delivery was started for: DELIVERY_FAILED names it when the endpoint was
    # deleted before any POST (None in inputs from before the field).
    endpoint_url: str | None = None
    # A delivery's retries run as a second activity (behind first attempts): what the first
    # one had done, and how many runs it took.
    resume: AttemptProgress | None = None
    prior_runs: int = 0
    # Its workflow waits for its turn in a FIFO queue (woken by the flow workflow): a run
    # queued behind another delivery ends (QUEUED_IN_ORDER) instead of asking again later.
    turn_signalled: bool = False


class AttemptProgress(BaseModel):
    """What the delivery activity's heartbeat carries from one activity run to the
    next: the attempts (POSTs) made for this delivery, and the last one's record."""

    # Histories recorded before the rename call them `posts`.
    attempts: Annotated[int, Field(validation_alias=AliasChoices("attempts", "posts"))] = 0
    last: AttemptRecord | None = None
    held: int = 0  # runs that ended without a POST, known: held back by flow control, or interrupted
    ordered: bool = False  # the delivery holds its order's place in a FIFO queue until it ends
    # The first attempt's run handed the delivery to the retries' activity to ask its endpoint's
    # schedule (a local run does not ask): a known run, but no hold the schedule should count.
    handed_over: bool = False
    slots_missed: int = 0  # rate-limit slots missed since the last POST (SlotMissed)

    def lost_runs(self, run: int) -> int:
        """Runs before `run` (1-based) that ended neither with a recorded POST, held back, nor handed over."""
        return run - 1 - self.attempts - self.held - int(self.handed_over)

    @classmethod
    def from_details(cls, details: Sequence[Any]) -> AttemptProgress:
        if not details:
            return cls()
        try:
            return cls.model_validate(details[0])
        except ValidationError:
            return cls()


class RecoveryRequest(BaseModel):
    """Re-run every failed (or skipped) delivery of an endpoint that ended since a moment."""

    account: str = DEFAULT_ACCOUNT
    endpoint_id: str
    since: datetime


class RecoveryResult(BaseModel):
    found: int  # failed deliveries since then
    started: int  # re-runs this recovery started (the others were recovered before); after a lost
    # worker, at least this many: the lost run's starts since its last heartbeat are not counted


AttemptInput.model_rebuild()
