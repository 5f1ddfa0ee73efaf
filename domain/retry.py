"""When the next attempt of a failed delivery is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Statuses whose Retry-After header the receiver means as a request to us.
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Backoff:
    initial: float
    multiplier: float
    maximum: float

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        A receiver's Retry-After wins over the schedule, capped at `maximum`.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.maximum)
        return min(self.initial * self.multiplier ** (attempt - 1), self.maximum)


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
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # the asctime form carries no zone; HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)
