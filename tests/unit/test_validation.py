"""Field rules shared by the API's inputs: instants UTC can hold, text a visibility query can hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.plain_words import reason
from domain.validation import UtcInstant, check_printable, utc_instant


def test_an_instant_is_read_in_utc_and_one_without_a_zone_is_taken_as_utc() -> None:
    assert utc_instant(datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))) == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    assert utc_instant(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59))),  # year 0 in UTC
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59))),  # year 10000
    ],
)
def test_an_instant_utc_cannot_hold_is_refused(moment: datetime) -> None:
    with pytest.raises(ValueError, match="between years 1 and 9999"):
        utc_instant(moment)


@pytest.mark.parametrize("text", ["\x00", "a\x00b", "\x1b[31m", "\x7f", "\x85", "x\ud800"])
def test_control_characters_and_lone_surrogates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="control characters"):
        check_printable(text)


@pytest.mark.parametrize("text", ["", "24957298", 'x" OR 1=1', "Müller & Söhne", "配送"])
def test_printable_text_passes(text: str) -> None:
    assert check_printable(text) == text


@pytest.mark.parametrize("value", [1796037000, 1796037000.5, "1796037000", "1.7e9", "-1"])
def test_an_instant_given_as_a_number_is_refused(value: object) -> None:
    """pydantic would read it as Unix time; the API's instants are ISO 8601 (CONTRACT §5)."""
    with pytest.raises(ValidationError, match="must be a date and time in ISO 8601, not a number"):
        TypeAdapter(UtcInstant).validate_python(value)


def test_an_iso_instant_is_read_in_utc() -> None:
    read = TypeAdapter(UtcInstant).validate_python("2026-11-30T12:00:00+01:00")
    assert read.isoformat() == "2026-11-30T11:00:00+00:00"


@pytest.mark.parametrize("value", ["2026-11-30T15:00:00", "2026-11-30"])
def test_a_time_without_its_zone_is_not_an_instant(value: str) -> None:
    """It used to be taken as UTC: 15:00 in Rome is not 15:00 UTC (CONTRACT §5 asks for instants)."""
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(UtcInstant).validate_python(value)
    assert [reason(e) for e in refused.value.errors()] == ["must say its time zone (Z, or an offset such as +01:00)"]
