"""The rate-limit phase: the rate achieved against the one configured, on 1 endpoint and on 50.

Endpoints of their own (subscribed to ORDER_SHIPPED, which no other phase
sends), deleted afterwards. The achieved rate of an endpoint is measured past
its initial burst (the first ceil(x) POSTs may go at once, and fill their
window): from the first POST after that window to the last.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from typing import Any

from bench.phases import Bench, completion_timeout
from domain.samples import sample_order_shipped


def achieved_per_s(times: list[float], per_second: float) -> float | None:
    """POSTs per second once the first burst and the window it fills are past: from the
    POST after the burst (one window after it) to the last. None when too few came to tell."""
    times = sorted(times)
    burst = math.ceil(per_second)
    if len(times) <= burst + 1:
        return None
    return (len(times) - burst - 1) / (times[-1] - times[burst])


async def _endpoints(bench: Bench, count: int, per_second: float, label: str) -> dict[str, str]:
    """`count` rate-limited endpoints; their ids by receiver path."""
    by_path = {}
    for i in range(count):
        path = f"/ok/{bench.run_id}-{label}-{i}"
        body = {
            "url": bench.stack.receiver_url + path,
            "events": ["ORDER_SHIPPED"],
            "rate_limit": {"per_second": per_second},
        }
        response = await bench.api.post("/v1/endpoints", json=body)
        response.raise_for_status()
        by_path[path] = response.json()["id"]
    return by_path


async def _measure(bench: Bench, label: str, endpoints: int, per_second: float, events: int) -> dict[str, Any]:
    since = await bench.received_total()
    by_path = await _endpoints(bench, endpoints, per_second, label)
    await bench.wait_received(since, endpoints, 60, f"{label}: first connections")
    since = await bench.received_total()
    gate = asyncio.Semaphore(bench.concurrency)

    async def post(i: int) -> None:
        event = sample_order_shipped(f"{bench.run_id}-{label}-{i:05d}").model_dump(mode="json", exclude_none=True)
        async with gate:
            response = await bench.api.post("/v1/events", json=event)
        response.raise_for_status()

    await asyncio.gather(*(post(i) for i in range(events)))
    deliveries = events * endpoints
    expected_s = (events - math.ceil(per_second)) / per_second
    await bench.wait_received(since, deliveries, completion_timeout(deliveries) + expected_s, label)
    arrivals = await bench.arrivals(since)
    rates = []
    for path in by_path:
        rate = achieved_per_s([at for _, p, at in arrivals if p == path], per_second)
        if rate is not None:
            rates.append(rate)
    for endpoint_id in by_path.values():
        (await bench.api.delete(f"/v1/endpoints/{endpoint_id}")).raise_for_status()
    median = statistics.median(rates)
    return {
        "endpoints": endpoints,
        "configured_per_s": per_second,
        "events_per_endpoint": events,
        "achieved_per_s_median": round(median, 3),
        "achieved_per_s_range": [round(min(rates), 3), round(max(rates), 3)],
        "ratio": round(median / per_second, 3),
    }


async def rate_limits(bench: Bench) -> dict[str, Any]:
    """One endpoint at 10/s (60 events), then 50 at 0.2/s each (4 events each, 10/s in all)."""
    return {
        "one": await _measure(bench, "rate1", endpoints=1, per_second=10.0, events=60),
        "many": await _measure(bench, "rate50", endpoints=50, per_second=0.2, events=4),
    }
