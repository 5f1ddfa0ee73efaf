"""Bulk recovery as a workflow, so that it survives restarts of the API and the worker."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.delivery import RECOVER_DELIVERIES, RecoveryRequest, RecoveryResult


@workflow.defn
class RecoveryWorkflow:
    @workflow.run
    async def run(self, request: RecoveryRequest) -> RecoveryResult:
        result: RecoveryResult = await workflow.execute_activity(
            RECOVER_DELIVERIES,
            request,
            result_type=RecoveryResult,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            summary=f"re-run failed deliveries of {request.endpoint_id} since {request.since.isoformat()}",
        )
        return result
