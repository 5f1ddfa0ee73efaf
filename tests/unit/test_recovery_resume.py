"""A recovery run after a lost worker counts the re-runs the lost run started: they are found
as recovered already, and only the rest is started again."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.recover_deliveries import Progress, RecoveryActivities
from domain.activity_contract import RecoveryRequest, RecoveryResult

REQUEST = RecoveryRequest(account="default", endpoint_id="ep_1", since=datetime(2026, 11, 30, tzinfo=UTC))


class WorkerLost(Exception):
    pass


async def test_a_run_after_a_lost_worker_adds_what_the_lost_run_started() -> None:
    heartbeats: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.append(details)

    async def lost_after_two(_: RecoveryRequest, progress: Progress) -> RecoveryResult:
        progress(1, 1)
        progress(2, 2)
        raise WorkerLost

    async def second_pass(_: RecoveryRequest, progress: Progress) -> RecoveryResult:
        progress(3, 1)  # the first two were found recovered already; the third is started now
        return RecoveryResult(found=3, started=1)

    with pytest.raises(WorkerLost):
        await env.run(RecoveryActivities(lost_after_two).recover_deliveries, REQUEST)
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=list(heartbeats[-1]))
    result = await env.run(RecoveryActivities(second_pass).recover_deliveries, REQUEST)

    assert result == RecoveryResult(found=3, started=3)
    assert heartbeats[-1] == (3, 3)  # a third run would start from here


async def test_a_first_run_or_an_older_heartbeat_adds_nothing() -> None:
    env = ActivityEnvironment()

    async def recover(_: RecoveryRequest, progress: Progress) -> RecoveryResult:
        return RecoveryResult(found=2, started=2)

    assert await env.run(RecoveryActivities(recover).recover_deliveries, REQUEST) == RecoveryResult(found=2, started=2)
    env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[5])  # found only, as before this change
    assert await env.run(RecoveryActivities(recover).recover_deliveries, REQUEST) == RecoveryResult(found=2, started=2)
