"""When a failed delivery is tried again: growing waits, capped, and the receiver's Retry-After (CONTRACT §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.retry import THROTTLE_STATUSES, Backoff, parse_retry_after

DEFAULT = Backoff(initial=10, multiplier=2, maximum=3600)
NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_the_default_schedule_is_10_20_40_seconds() -> None:
    """README: 10 s, 20 s, 40 s … by default."""
    assert [DEFAULT.delay(attempt) for attempt in (1, 2, 3, 4)] == [10, 20, 40, 80]


def test_the_wait_never_exceeds_the_maximum() -> None:
    assert DEFAULT.delay(9) == 2560
    assert DEFAULT.delay(10) == 3600
    assert DEFAULT.delay(50) == 3600


def test_short_settings_give_short_waits() -> None:
    """Tests and demos configure short delays; the rule is the same."""
    assert [Backoff(0.05, 1.0, 5.0).delay(a) for a in (1, 2, 10)] == [0.05, 0.05, 0.05]


@given(attempt=st.integers(min_value=1, max_value=60))
def test_the_waits_grow_and_stay_capped(attempt: int) -> None:
    assert DEFAULT.delay(attempt) <= DEFAULT.delay(attempt + 1) <= 3600


def test_the_wait_is_the_larger_of_the_schedule_and_retry_after() -> None:
    assert DEFAULT.delay(1, retry_after=120) == 120
    assert DEFAULT.delay(5, retry_after=3) == 160
    assert DEFAULT.delay(1, retry_after=0) == 10


def test_retry_after_is_capped_at_its_own_maximum_not_the_schedules_and_never_negative() -> None:
    assert DEFAULT.delay(1, retry_after=5400) == 5400
    assert DEFAULT.delay(1, retry_after=86400) == 7200
    assert DEFAULT.delay(1, retry_after=-5) == 10
    assert Backoff(0.05, 1.0, maximum=1.0).delay(3, retry_after=5) == 5


def test_overloaded_answers_throttle() -> None:
    assert {429, 502, 503, 504} == THROTTLE_STATUSES


@pytest.mark.parametrize(("value", "seconds"), [("120", 120), ("0", 0), (" 30 ", 30)])
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [
        format_datetime(NOW + timedelta(seconds=30), usegmt=True),  # IMF-fixdate
        "Monday, 01-Jan-24 12:00:30 GMT",  # obsolete RFC 850 format
        "Mon Jan  1 12:00:30 2024",  # obsolete asctime format
    ],
)
def test_retry_after_as_an_http_date(value: str) -> None:
    """RFC 9110 §5.6.7: a recipient must accept all three HTTP-date formats."""
    seconds = parse_retry_after(value, NOW)
    assert seconds is not None and seconds == pytest.approx(30, abs=1)


def test_a_retry_after_date_in_the_past_means_now() -> None:
    assert parse_retry_after(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == 0


@pytest.mark.parametrize("value", [None, "", "   ", "garbage", "-5", "1.5", "1e3", "soon", "²", "12²"])
def test_an_unusable_retry_after_is_ignored(value: str | None) -> None:
    """A header we cannot read falls back to the schedule (None), it never breaks the delivery."""
    assert parse_retry_after(value, NOW) is None
