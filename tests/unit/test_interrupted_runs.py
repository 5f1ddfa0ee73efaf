"""A retries' run that Temporal, the registry or a flow schedule interrupts is known, not lost;
one whose endpoint credentials this worker cannot open says so.

Run in the SDK's activity environment, as Temporal would run it again and again: each run
starts from the heartbeat the previous one left (a retry of an activity sees only that).
A delivery stops as "lost with its workers" after LOST_RUNS_ALLOWED runs that left no trace;
interruptions, however many, must never add up to that.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.deliver_webhook import DeliveryActivities
from activities.http_exchange import WebhookPoster
from domain.activity_contract import ATTEMPT_INTERRUPTED, LOST_RUNS_ALLOWED, AttemptInput, AttemptProgress
from domain.endpoints import BasicAuth, DeliveryOutcome, Endpoint, HealthPolicy
from domain.events import EventType
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


class OneEndpoint(RegistryDown):
    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint

    async def for_delivery(self, endpoint_id: str, seen_version: int | None = None) -> Endpoint | None:
        return self._endpoint


class NoFlowControl:
    """The endpoints here have no rate limit and no ordering: their schedule is never asked."""


def _unused(_: str) -> Any:
    raise AssertionError("not reached")


def _activities(pooled: httpx.AsyncClient, fresh: httpx.AsyncClient, registry: RegistryDown) -> DeliveryActivities:
    return DeliveryActivities(
        poster=WebhookPoster(pooled, fresh),
        endpoints=lambda _account: registry,
        schedules=lambda _account: NoFlowControl(),  # type: ignore[arg-type,return-value]
        notices=_unused,
        backoff=Backoff(1.0, 2.0, 60.0),
        http_timeout=5.0,
        health=HealthPolicy(failures=0, seconds=0),
        secrets=SecretBox(os.urandom(32)),
    )


# The retries' activity of a delivery whose local first attempt failed.
RETRIES = AttemptInput(
    delivery_id="delivery/default/evt-1/0",
    message_id="msg_1",
    account="default",
    endpoint_id="ep_1",
    body="{}",
    max_attempts=4,
    resume=AttemptProgress(attempts=1),
    prior_runs=1,
)


async def test_interrupted_runs_never_count_as_lost() -> None:
    async with httpx.AsyncClient() as pooled, httpx.AsyncClient() as fresh:
        activities = _activities(pooled, fresh, RegistryDown())
        attempt = RETRIES
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


async def test_a_credential_this_worker_cannot_open_is_named_and_retried_without_a_post() -> None:
    # Sealed with a key this worker does not hold (rotated without WEBHOOKS_SECRETS_OLD_KEYS).
    sealed = SecretBox(os.urandom(32)).seal("hunter2-password", "default", "auth.password")
    now = datetime.now(UTC)
    endpoint = Endpoint(
        id="ep_1",
        created_at=now,
        updated_at=now,
        url="https://receiver.example/hook",
        events=[EventType.ORDER_SHIPPED],
        auth=BasicAuth(username="shop", password=sealed),
    )
    async with httpx.AsyncClient() as pooled, httpx.AsyncClient() as fresh:
        activities = _activities(pooled, fresh, OneEndpoint(endpoint))
        with pytest.raises(ApplicationError) as ended:
            await ActivityEnvironment().run(activities.deliver_webhook, RETRIES)

    assert ended.value.type == ATTEMPT_INTERRUPTED and not ended.value.non_retryable
    assert "auth.password is sealed with unknown key" in str(ended.value)
    assert "hunter2" not in str(ended.value)
    assert AttemptProgress.model_validate(ended.value.details[0]).attempts == 1  # no POST was made
