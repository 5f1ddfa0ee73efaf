"""Bulk recovery as a workflow, so that it survives restarts of the API and the worker."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.recover_deliveries import RecoveryActivities
    from domain.activity_contract import (
        INVALID_RECOVERY_REQUEST,
        RECOVERY_HEARTBEAT_TIMEOUT_SECONDS,
        RECOVERY_MAX_ATTEMPTS,
        RECOVERY_MAX_INTERVAL_SECONDS,
        RECOVERY_TIMEOUT_SECONDS,
        RecoveryRequest,
        RecoveryResult,
    )


@workflow.defn
class RecoveryWorkflow:
    @workflow.run
    async def run(self, request: RecoveryRequest) -> RecoveryResult:
        return await workflow.execute_activity_method(
            RecoveryActivities.recover_deliveries,
            request,
            start_to_close_timeout=timedelta(seconds=RECOVERY_TIMEOUT_SECONDS),
            heartbeat_timeout=timedelta(seconds=RECOVERY_HEARTBEAT_TIMEOUT_SECONDS),
            # Bounded: a request that fails every run (issue 13's since in year 0 did) ends the
            # recovery failed instead of retrying forever. The policy is not part of replay.
            retry_policy=RetryPolicy(
                maximum_attempts=RECOVERY_MAX_ATTEMPTS,
                maximum_interval=timedelta(seconds=RECOVERY_MAX_INTERVAL_SECONDS),
                non_retryable_error_types=[INVALID_RECOVERY_REQUEST],
            ),
            summary=f"re-run failed deliveries of {request.endpoint_id} since {request.since.isoformat()}",
        )
