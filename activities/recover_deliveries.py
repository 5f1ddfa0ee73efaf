"""`recover_deliveries`: re-run an endpoint's failed and skipped deliveries, each at most once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import activity

from domain.activity_contract import RECOVER_DELIVERIES, RecoveryRequest, RecoveryResult

# Does the recovery; told of progress, which the activity turns into heartbeats.
Recover = Callable[[RecoveryRequest, Callable[[int], None]], Awaitable[RecoveryResult]]


class RecoveryActivities:
    def __init__(self, recover: Recover) -> None:
        self._recover = recover

    @activity.defn(name=RECOVER_DELIVERIES)
    async def recover_deliveries(self, request: RecoveryRequest) -> RecoveryResult:
        """Idempotent, so a retry after a lost worker repeats nothing (see services.reruns.recover_failed)."""
        return await self._recover(request, activity.heartbeat)
