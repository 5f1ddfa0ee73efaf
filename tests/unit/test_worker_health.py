"""When the worker's health check says it polls: its own identity, a poll started lately."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.worker_health import POLL_FRESHNESS, polling_problem

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_a_poll_started_within_the_freshness_window_is_healthy():
    assert polling_problem("7@worker-a", [("7@worker-a", NOW - POLL_FRESHNESS)], NOW) is None


def test_the_newest_poll_of_either_task_type_counts():
    # Activity slots all busy: no activity poll for long, workflow polls go on.
    pollers = [("7@worker-a", NOW - timedelta(minutes=30)), ("7@worker-a", NOW - timedelta(seconds=5))]

    assert polling_problem("7@worker-a", pollers, NOW) is None


def test_another_replica_polling_does_not_make_this_one_healthy():
    problem = polling_problem("7@worker-a", [("7@worker-b", NOW)], NOW)

    assert problem == "Temporal lists no poll from 7@worker-a on the task queue"


def test_a_worker_that_stopped_polling_is_unhealthy_with_how_long_ago():
    stale = NOW - POLL_FRESHNESS - timedelta(seconds=1)

    problem = polling_problem("7@worker-a", [("7@worker-a", stale)], NOW)

    assert problem == "the last poll Temporal saw from 7@worker-a started 121s ago"
