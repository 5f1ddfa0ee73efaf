"""Which delivery ends the worker reports to its endpoint's registry (EndpointHealth.changed_by)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.endpoints import DeliveryOutcome, EndpointHealth, HealthPolicy

POLICY = HealthPolicy(failures=3, seconds=3600)
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def outcome(delivery: str, *, succeeded: bool = False, at: datetime = T0) -> DeliveryOutcome:
    return DeliveryOutcome(endpoint_id="ep_1", delivery_id=delivery, succeeded=succeeded, at=at, policy=POLICY)


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
