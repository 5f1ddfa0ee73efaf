"""`recover_deliveries`: re-run an endpoint's failed and skipped deliveries, each at most once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.activity_contract import INVALID_RECOVERY_REQUEST, RECOVER_DELIVERIES, RecoveryRequest, RecoveryResult
from domain.validation import utc_instant

# Does the recovery; told of progress (events found, re-runs started so far), which the
# activity turns into heartbeats.
Progress = Callable[[int, int], None]
Recover = Callable[[RecoveryRequest, Progress], Awaitable[RecoveryResult]]


class RecoveryActivities:
    def __init__(self, recover: Recover) -> None:
        self._recover = recover

    @activity.defn(name=RECOVER_DELIVERIES)
    async def recover_deliveries(self, request: RecoveryRequest) -> RecoveryResult:
        """Idempotent, so a retry after a lost worker repeats nothing (see services.reruns.recover_failed).

        A request that cannot succeed fails without retries: the API checks it first, but a
        recovery started by an older API, or by hand, must not retry forever.
        """
        try:
            utc_instant(request.since)
        except ValueError as err:
            raise _invalid(f"since {err}") from None
        # A run after a lost worker finds the re-runs the lost one started as recovered already,
        # and starts only the rest: what it started is added to theirs, from its last heartbeat.
        details = activity.info().heartbeat_details
        started_before = int(details[1]) if len(details) > 1 else 0

        def progress(found: int, started: int) -> None:
            activity.heartbeat(found, started_before + started)

        try:
            done = await self._recover(request, progress)
        except RPCError as err:
            if err.status == RPCStatusCode.INVALID_ARGUMENT:
                raise _invalid(f"Temporal refused the recovery's query: {err.message}") from None
            raise
        return done.model_copy(update={"started": started_before + done.started})


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_RECOVERY_REQUEST, non_retryable=True)
