"""Which deliveries skip the local first attempt: those it would not serve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.endpoints import starts_in_activity
from domain.flow import Ordering, RateLimit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rate_limit", "ordering", "failing", "throttled_until", "in_activity"),
    [
        (None, Ordering.NONE, False, None, False),  # healthy: the first POST is tried in the workflow task
        (RateLimit(per_second=5), Ordering.NONE, False, None, True),  # must ask its schedule
        (None, Ordering.FIFO, False, None, True),  # likewise, for its place in its order
        (None, Ordering.NONE, True, None, True),  # its last delivery failed, or its POSTs fail
        (None, Ordering.NONE, False, NOW + timedelta(seconds=1), True),  # the receiver's pause goes on
        (None, Ordering.NONE, False, NOW - timedelta(seconds=1), False),  # a pause that has ended
    ],
)
def test_a_delivery_starts_in_the_activity_when_a_local_attempt_would_not_post_or_would_fail(
    rate_limit: RateLimit | None,
    ordering: Ordering,
    failing: bool,
    throttled_until: datetime | None,
    in_activity: bool,
) -> None:
    assert starts_in_activity(rate_limit, ordering, failing, throttled_until, NOW) is in_activity
