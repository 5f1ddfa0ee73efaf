"""Which delivery ends and failed POSTs the worker reports to its endpoint's registry
(EndpointHealth.changed_by, EndpointHealth.begins_failing_posts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.endpoints import DeliveryOutcome, EndpointHealth, HealthPolicy
from domain.records import Attempt, HttpRequestRecord, HttpResponseRecord

POLICY = HealthPolicy(failures=3, seconds=3600)
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def outcome(
    delivery: str, *, succeeded: bool = False, at: datetime = T0, policy: HealthPolicy = POLICY
) -> DeliveryOutcome:
    return DeliveryOutcome(endpoint_id="ep_1", delivery_id=delivery, succeeded=succeeded, at=at, policy=policy)


def post(number: int, status: int | None) -> Attempt:
    """A POST answered `status` (None: no answer came), failed unless 200."""
    response = None if status is None else HttpResponseRecord(status_code=status, status_text="", headers={}, body="")
    return Attempt(
        number=number,
        started_at=T0,
        duration_ms=5,
        request=HttpRequestRecord(method="POST", url="http://127.0.0.1:9/hook", headers={}, body="{}"),
        response=response,
        error=None if status == 200 else "failed",
    )


def run_of(failures: int) -> EndpointHealth:
    health = EndpointHealth()
    for n in range(failures):
        health = health.after(outcome(f"d{n}", at=T0 + timedelta(seconds=n)))
    return health


def test_failures_are_reported_until_the_run_holds_the_policys_count() -> None:
    assert [run_of(n).changed_by(outcome("next", at=T0 + timedelta(minutes=1))) for n in range(5)] == [
        True,
        True,
        True,
        False,  # three counted: a fourth changes nothing the registry decides
        False,
    ]


def test_the_failure_that_finds_the_run_long_enough_is_reported_and_disables() -> None:
    full = run_of(3)
    due = outcome("late", at=T0 + timedelta(seconds=3600))
    assert not full.changed_by(outcome("early", at=T0 + timedelta(seconds=3599)))
    assert full.changed_by(due) and full.after(due).should_disable(POLICY, due.at)


def test_a_success_is_reported_only_when_it_ends_a_run() -> None:
    assert not EndpointHealth().changed_by(outcome("ok", succeeded=True))
    assert run_of(1).changed_by(outcome("ok", succeeded=True))
    assert run_of(3).changed_by(outcome("ok", succeeded=True))


def test_a_failure_counted_already_is_not_reported_again() -> None:
    assert not run_of(2).changed_by(outcome("d1"))


def test_with_the_rule_off_only_a_success_ending_failed_posts_is_reported() -> None:
    off = HealthPolicy(failures=0, seconds=0)
    assert not EndpointHealth().changed_by(outcome("d0", policy=off))
    assert not EndpointHealth().changed_by(outcome("ok", succeeded=True, policy=off))
    failing = EndpointHealth(posts_failing_since=T0)
    assert failing.changed_by(outcome("ok", succeeded=True, policy=off))
    assert failing.after(outcome("ok", succeeded=True, policy=off)) == EndpointHealth()


@pytest.mark.parametrize(
    ("failed", "begins"),
    [
        (post(1, 500), False),  # a working receiver's one-off error
        (post(2, 500), True),  # its retry failed too
        (post(1, None), False),  # nor a one-off refused connection or timeout
        (post(2, None), True),
        (post(3, 503), True),
        (post(2, 200), False),  # a success begins nothing
    ],
)
def test_a_retry_that_fails_begins_failing_posts(failed: Attempt, begins: bool) -> None:
    assert EndpointHealth().begins_failing_posts(failed) is begins
    assert not EndpointHealth(posts_failing_since=T0).begins_failing_posts(failed)  # known already


def test_a_failed_delivery_keeps_the_mark_of_failing_posts_and_a_success_ends_both() -> None:
    marked = EndpointHealth(posts_failing_since=T0)
    counted = marked.after(outcome("d0", at=T0 + timedelta(seconds=1)))
    assert (counted.failed_deliveries, counted.posts_failing_since) == (["d0"], T0)
    assert counted.after(outcome("ok", succeeded=True)) == EndpointHealth()
