"""bench/hops.py: a delivery's hops from its recorded history, whatever the machine's time zone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from bench.hops import delivery_hops

HISTORIES = Path(__file__).parents[2] / "bench" / "results" / "histories"


def _history(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())


def _utc(history: WorkflowHistory, index: int) -> float:
    return history.events[index].event_time.ToDatetime(tzinfo=UTC).timestamp()


@pytest.fixture(params=["UTC", "Europe/Berlin", "America/Los_Angeles"])
def time_zone(request: pytest.FixtureRequest) -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.usefixtures("time_zone")
def test_a_local_first_attempts_hops_are_the_same_in_every_time_zone() -> None:
    history = _history("first_attempt_success")
    started, wft_started = _utc(history, 0), _utc(history, 2)

    found = delivery_hops(history.events, accepted_at=started + 0.005, arrived_at=wft_started + 0.012)

    assert found is not None
    hops, handed_over = found
    assert hops["start_to_202"] == pytest.approx(0.005, abs=1e-6)
    assert hops["worker_to_post"] == pytest.approx(0.012, abs=1e-6)
    assert hops["wft_dispatch"] == pytest.approx(wft_started - _utc(history, 1), abs=1e-6)
    assert handed_over is False


def test_retries_after_a_failed_local_first_attempt_are_not_a_hand_over() -> None:
    history = _history("failure_2_retries_first_of_a_run")  # its endpoint healthy: a local first attempt
    found = delivery_hops(history.events, accepted_at=_utc(history, 0), arrived_at=_utc(history, 2))
    assert found is not None and found[1] is False


def test_a_delivery_making_every_attempt_in_the_activity_posts_from_the_activity() -> None:
    history = _history("failure_2_retries")  # its endpoint already failing
    found = delivery_hops(history.events, accepted_at=_utc(history, 0), arrived_at=_utc(history, 5))
    assert found is not None and found[1] is True


def test_a_history_without_its_first_workflow_task_has_no_hops() -> None:
    history = _history("first_attempt_success")
    assert delivery_hops(history.events[:2], accepted_at=0.0, arrived_at=0.0) is None
