"""worker.cache_limits: a worker never runs more workflow tasks than half its cache holds."""

from __future__ import annotations

import pytest

from settings import Settings
from worker import cache_limits


@pytest.mark.parametrize(
    ("cached", "max_activities", "tasks"),
    [(50, 100, 25), (4, 100, 2), (2, 100, 1), (500, 100, 100), (50, 10, 10)],
)
def test_workflow_tasks_at_once_leave_half_the_cache_free(cached: int, max_activities: int, tasks: int) -> None:
    # A running first attempt's workflow must stay cached until the attempt is recorded: a task
    # slot for every cache entry let new tasks push such workflows out, and their POSTs ran twice.
    settings = Settings(worker_cached_workflows=cached, worker_max_activities=max_activities)
    assert cache_limits(settings) == {"max_cached_workflows": cached, "max_concurrent_workflow_tasks": tasks}
