"""A delivery's log record: its `date` and `date_end` bound every attempt it made (the seed's Date / Date End)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.delivery import DeliveryInput
from domain.events import EventType
from domain.records import AttemptRecord, DeliveryKind, DeliveryResult, HttpRequestRecord, HttpResponseRecord
from domain.samples import SAMPLES

STARTED = datetime(2026, 11, 30, 11, 25, 9, 879000, tzinfo=UTC)


def _delivery() -> DeliveryInput:
    return DeliveryInput(
        delivery_id="delivery/default/evt-1/0",
        kind=DeliveryKind.EVENT,
        account="default",
        endpoint_id="ep_1",
        endpoint_url="https://receiver.example/hook",
        event=SAMPLES[EventType.TRACKING_UPDATE]("evt-1"),
        max_attempts=1,
    )


def _attempt(started_at: datetime, duration_ms: int) -> AttemptRecord:
    return AttemptRecord(
        number=1,
        started_at=started_at,
        duration_ms=duration_ms,
        request=HttpRequestRecord(method="POST", url="https://receiver.example/hook", headers={}, body="{}"),
        response=HttpResponseRecord(status_code=200, status_text="OK", headers={}, body="{}"),
        error=None,
    )


def test_a_delivery_ends_no_earlier_than_its_last_exchange() -> None:
    # A first attempt runs inside the workflow task whose clock reads when the task began.
    attempt = _attempt(STARTED + timedelta(milliseconds=29), duration_ms=12)
    record = _delivery().record(
        attempt, result=DeliveryResult.SUCCESS, error=None, retries=0, date=STARTED, date_end=STARTED
    )

    assert record.date_end == attempt.started_at + timedelta(milliseconds=12)


def test_a_later_workflow_clock_stands() -> None:
    attempt = _attempt(STARTED, duration_ms=12)
    later = STARTED + timedelta(seconds=3)
    record = _delivery().record(
        attempt, result=DeliveryResult.SUCCESS, error=None, retries=0, date=STARTED, date_end=later
    )

    assert record.date_end == later
