"""Which ends of a delivery the worker reports to its endpoint's registry: those that can change
the endpoint's health, judged on a fresh read when the one made before the POST says none can."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from domain.activity_contract import AttemptProgress
from domain.endpoints import DeliveryOutcome, Endpoint, EndpointHealth, HealthPolicy
from domain.records import AttemptRecord, HttpRequestRecord, HttpResponseRecord
from tests.unit.test_interrupted_runs import RETRIES, ReportsTaken, _activities, _endpoint

POLICY = HealthPolicy(failures=3, seconds=3600)
NOW = datetime.now(UTC)
FULL_RUN = EndpointHealth(failed_deliveries=["d1", "d2", "d3"], failing_since=NOW - timedelta(minutes=5))


class ReadsInTurn(ReportsTaken):
    """The registry as each read finds it: the first read, then the next, and so on."""

    def __init__(self, *reads: Endpoint) -> None:
        super().__init__(reads[0])
        self._reads = list(reads)

    async def for_delivery(self, endpoint_id: str, seen_version: int | None = None) -> Endpoint | None:
        return self._reads.pop(0) if len(self._reads) > 1 else self._reads[0]


async def _last_attempt_failed(registry: ReadsInTurn) -> list[DeliveryOutcome]:
    """A delivery whose last POST failed in a run lost before it reported it: the next run reports."""
    failed = AttemptRecord(
        number=RETRIES.max_attempts,
        started_at=NOW,
        duration_ms=3,
        request=HttpRequestRecord(method="POST", url="https://receiver.example/hook", headers={}, body="{}"),
        response=HttpResponseRecord(status_code=500, status_text="Internal Server Error", headers={}, body=""),
        error="HTTP response code is 500 (Internal Server Error), it must be 200",
    )
    resumed = RETRIES.model_copy(update={"resume": AttemptProgress(attempts=failed.number, last=failed)})
    async with httpx.AsyncClient() as pooled:
        with pytest.raises(ApplicationError):
            await ActivityEnvironment().run(_activities(pooled, registry, health=POLICY).deliver_webhook, resumed)
    return registry.outcomes


async def test_a_failure_beyond_a_counted_run_is_not_reported() -> None:
    assert await _last_attempt_failed(ReadsInTurn(_endpoint(health=FULL_RUN))) == []


async def test_a_failure_after_a_reset_the_first_read_missed_is_reported() -> None:
    """The review's case: a success reset the count after the endpoint was read; this failure
    starts the new run, and dropping it would put off disabling by a whole run."""
    reset = _endpoint(health=EndpointHealth())
    assert len(await _last_attempt_failed(ReadsInTurn(_endpoint(health=FULL_RUN), reset))) == 1


async def test_a_failure_while_the_endpoint_is_disabled_is_not_reported() -> None:
    long_ago = FULL_RUN.model_copy(update={"failing_since": NOW - timedelta(days=2)})
    assert await _last_attempt_failed(ReadsInTurn(_endpoint(health=long_ago, disabled=True))) == []
    assert len(await _last_attempt_failed(ReadsInTurn(_endpoint(health=long_ago)))) == 1  # enabled: it disables
