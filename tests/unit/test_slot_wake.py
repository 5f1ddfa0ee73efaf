"""A slot is never taken before its instant, even when the event loop wakes a timer early: its
clock is not the wall clock a slot is fixed in, and a POST begun early would use up the margin
its rate limit's window keeps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from activities.flow_control import FRESH, Latencies, take_slot
from domain.endpoints import Endpoint
from domain.flow import RateLimit, SlotAnswer
from tests.unit.test_interrupted_runs import _endpoint

EARLY = 0.02  # how much too soon the loop wakes each long sleep here


@pytest.fixture
def loop_wakes_early(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every sleep longer than EARLY ends EARLY seconds too soon; the delays asked, in order."""
    real_sleep = asyncio.sleep
    asked: list[float] = []

    async def wakes_early(delay: float, result: object = None) -> object:
        asked.append(delay)
        return await real_sleep(delay - EARLY if delay > 2 * EARLY else delay, result)

    monkeypatch.setattr(asyncio, "sleep", wakes_early)
    return asked


async def _taken(answer: SlotAnswer) -> tuple[datetime, datetime]:
    """When the slot's endpoint was read, and when take_slot let the POST begin."""
    read_at: list[datetime] = []

    async def read() -> Endpoint:
        read_at.append(datetime.now(UTC))
        return _endpoint()

    await take_slot(answer, read, Latencies(), missed_before=0)
    return read_at[0], datetime.now(UTC)


async def test_a_slot_without_a_grace_is_read_and_taken_no_sooner_than_its_instant(
    loop_wakes_early: list[float],
) -> None:
    go_at = datetime.now(UTC) + timedelta(seconds=0.3)

    read_at, begun_at = await _taken(SlotAnswer(go_at=go_at))

    assert read_at >= go_at
    assert begun_at >= go_at
    assert len(loop_wakes_early) >= 2, "woken early, it slept again"


async def test_a_graced_slot_is_read_before_its_instant_and_taken_no_sooner_than_it(
    loop_wakes_early: list[float],
) -> None:
    now = datetime.now(UTC)
    go_at = now + FRESH + timedelta(seconds=0.3)
    start_by = go_at + RateLimit(per_second=2).start_grace

    read_at, begun_at = await _taken(SlotAnswer(go_at=go_at, start_by=start_by, decided_at=now))

    assert start_by - FRESH <= read_at < go_at  # fresh until the grace ends
    assert go_at <= begun_at
    assert len(loop_wakes_early) >= 3, "woken early before the read and before the slot, it slept again"
