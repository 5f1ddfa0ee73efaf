"""The Temporal floor's work: a minimal workflow with one trivial activity.

Kept apart from `bench.floor_worker`, which runs as `__main__`: workflows
must live in an importable module for the sandbox to load them.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

FLOOR_TASK_QUEUE = "bench-floor"


@activity.defn
async def trivial(n: int) -> int:
    return n + 1


@workflow.defn
class FloorWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(trivial, n, start_to_close_timeout=timedelta(seconds=60))
