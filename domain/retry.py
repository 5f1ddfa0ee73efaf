"""When the next attempt of a failed delivery is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Answers that mean the receiver is overloaded: they throttle the whole endpoint, until
# their Retry-After or, without one, the failed delivery's next retry (Standard Webhooks).
THROTTLE_STATUSES = frozenset({429, 502, 503, 504})
# The receiver wants no more webhooks: its endpoint is disabled at once, nothing retried.
GONE = 410


@dataclass(frozen=True)
class Backoff:
    initial: float
    multiplier: float
    maximum: float
    retry_after_maximum: float = 7200.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        The larger of the schedule (capped at `maximum`) and the receiver's
        Retry-After (capped at `retry_after_maximum`, not at `maximum`: a receiver
        that asks for an hour's rest gets it even when retries are an hour apart).
        """
        scheduled = min(self.initial * self.multiplier ** (attempt - 1), self.maximum)
        if retry_after is None:
            return scheduled
        return max(scheduled, min(max(retry_after, 0.0), self.retry_after_maximum))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks for: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    # isdigit() alone also accepts "²"; delta-seconds are ASCII digits only.
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:  # the asctime form carries no zone; HTTP dates are GMT
            when = when.replace(tzinfo=UTC)
        return max((when - now).total_seconds(), 0.0)
    except (TypeError, ValueError, OverflowError):  # a year, hour or zone beyond datetime's range
        return None
