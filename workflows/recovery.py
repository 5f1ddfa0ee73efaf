"""Bulk recovery as a workflow, so that it survives restarts of the API and the worker."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.recover_deliveries import RecoveryActivities
    from domain.activity_contract import (
        RECOVERY_HEARTBEAT_TIMEOUT_SECONDS,
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
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            summary=f"re-run failed deliveries of {request.endpoint_id} since {request.since.isoformat()}",
        )
