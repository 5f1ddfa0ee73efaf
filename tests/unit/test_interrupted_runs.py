"""A retries' run that Temporal, the registry or a flow schedule interrupts is known, not lost.

Run in the SDK's activity environment, as Temporal would run it again and again: each run
starts from the heartbeat the previous one left (a retry of an activity sees only that).
A delivery stops as "lost with its workers" after LOST_RUNS_ALLOWED runs that left no trace;
interruptions, however many, must never add up to that.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.deliver_webhook import DeliveryActivities
from activities.http_exchange import WebhookPoster
from domain.activity_contract import ATTEMPT_INTERRUPTED, LOST_RUNS_ALLOWED, AttemptInput, AttemptProgress
from domain.endpoints import DeliveryOutcome, Endpoint, HealthPolicy
from domain.retry import Backoff
from infra.secrets import SecretBox


class RegistryDown:
    """An account's endpoints while the registry does not answer."""

    async def for_delivery(self, endpoint_id: str, seen_version: int | None = None) -> Endpoint | None:
        raise ConnectionError("registry did not answer")

    async def record_outcome(self, outcome: DeliveryOutcome) -> None:
        raise AssertionError("no outcome without an attempt")

    async def throttle(self, endpoint_id: str, until: datetime) -> None:
        raise AssertionError("no throttle without an attempt")

    async def gone(self, endpoint_id: str, delivery_id: str, at: datetime) -> None:
        raise AssertionError("no 410 without an attempt")


def _unused(_: str) -> Any:
    raise AssertionError("not reached while the registry is down")


async def test_interrupted_runs_never_count_as_lost() -> None:
    async with httpx.AsyncClient() as pooled, httpx.AsyncClient() as fresh:
        activities = DeliveryActivities(
            poster=WebhookPoster(pooled, fresh),
            endpoints=lambda _account: RegistryDown(),
            schedules=_unused,
            notices=_unused,
            backoff=Backoff(1.0, 2.0, 60.0),
            http_timeout=5.0,
            health=HealthPolicy(failures=0, seconds=0),
            secrets=SecretBox(os.urandom(32)),
        )
        # The retries' activity of a delivery whose local first attempt failed.
        attempt = AttemptInput(
            delivery_id="delivery/default/evt-1/0",
            message_id="msg_1",
            account="default",
            endpoint_id="ep_1",
            body="{}",
            max_attempts=4,
            resume=AttemptProgress(attempts=1),
            prior_runs=1,
        )
        heartbeats: list[Any] = []
        env = ActivityEnvironment()
        env.on_heartbeat = lambda *details: heartbeats.append(details)
        for run in range(1, 3 * LOST_RUNS_ALLOWED):
            env.info = dataclasses.replace(
                env.info, attempt=run, heartbeat_details=list(heartbeats[-1]) if heartbeats else []
            )
            with pytest.raises(ApplicationError) as ended:
                await env.run(activities.deliver_webhook, attempt)

            assert ended.value.type == ATTEMPT_INTERRUPTED, f"run {run}: {ended.value}"
        assert AttemptProgress.from_details(heartbeats[-1]) == AttemptProgress(
            attempts=1, held=3 * LOST_RUNS_ALLOWED - 1
        )
