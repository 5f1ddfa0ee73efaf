"""Fairness between accounts: account B's 202->receiver latency, idle and behind account A's backlog."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx

from bench.phases import Bench, completion_timeout
from bench.stats import exactly_once, summary_ms
from tests.conftest import free_port
from tests.integration.helpers import tracking_event

ACCOUNT_A, ACCOUNT_B = "bench-a", "bench-b"
B_INTERVAL = 0.25  # B posts one event at a time, this far apart: a trickle, not a burst of its own


async def fairness(bench: Bench, burst_events: int, b_events: int, backlog_target: int = 500) -> dict[str, Any]:
    """B's events, one every B_INTERVAL, first on an idle service, then while A's burst of
    `burst_events` (to as many endpoints as the pipeline's, `concurrency` posts in flight)
    waits for the worker; B starts once `backlog_target` of A's deliveries wait (or A's
    burst is all accepted, for tiny runs). Measured until every delivery was received."""
    stack = bench.stack
    tokens = {ACCOUNT_A: secrets.token_urlsafe(16), ACCOUNT_B: secrets.token_urlsafe(16)}
    env = {"WEBHOOKS_API_TOKENS": "{" + ", ".join(f'"{a}": "{t}"' for a, t in tokens.items()) + "}"}
    url = await stack.start_api("api_accounts", free_port(), **env)
    limits = httpx.Limits(max_connections=4 * bench.concurrency, keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as api:
        auth_a = {"Authorization": f"Bearer {tokens[ACCOUNT_A]}"}
        auth_b = {"Authorization": f"Bearer {tokens[ACCOUNT_B]}"}
        since = await bench.received_total()
        for i in range(max(len(bench.endpoints), 1)):
            await _create_endpoint(api, auth_a, f"{stack.receiver_url}/ok/fair-a{i}")
        await _create_endpoint(api, auth_b, f"{stack.receiver_url}/ok/fair-b")
        await bench.wait_received(since, max(len(bench.endpoints), 1) + 1, 60, "fairness: first connections")

        since = since_idle = await bench.received_total()
        idle_b = await _trickle(api, auth_b, f"{bench.run_id}-fair-idle-", b_events)
        await bench.wait_received(since, len(idle_b), completion_timeout(len(idle_b)), "fairness: B idle")
        idle_ms = await _latencies(bench, since, idle_b)

        since = await bench.received_total()
        accepted_a: list[str] = []
        gate = asyncio.Semaphore(bench.concurrency)

        async def post_a(i: int) -> None:
            async with gate:
                accepted = await _post(api, auth_a, tracking_event(f"{bench.run_id}-fair-burst-{i:06d}"))
            accepted_a.extend(d for d, _ in accepted)

        t0 = time.monotonic()
        burst = asyncio.gather(*(post_a(i) for i in range(burst_events)))
        burst_accepted: list[float] = []  # when A's last 202 came
        burst.add_done_callback(lambda _: burst_accepted.append(time.monotonic()))
        target = min(backlog_target, burst_events * max(len(bench.endpoints), 1) // 2)
        while not burst.done() and len(accepted_a) - (await bench.received_total() - since) < target:
            stack.check_alive()
            await asyncio.sleep(0.1)
        waiting_at_b_start = len(accepted_a) - (await bench.received_total() - since)
        busy_b = await _trickle(api, auth_b, f"{bench.run_id}-fair-busy-", b_events)
        await burst
        expected = len(accepted_a) + len(busy_b)
        await bench.wait_received(since, expected, completion_timeout(expected), "fairness: A's burst and B")
        drained_s = time.monotonic() - t0
        busy_ms = await _latencies(bench, since, busy_b)
        # B's events whose 202 came while A's burst was still being posted, and after.
        posting = await _latencies(bench, since, {d: at for d, at in busy_b.items() if at <= burst_accepted[0]})
        posted = await _latencies(bench, since, {d: at for d, at in busy_b.items() if at > burst_accepted[0]})
        arrivals = await bench.arrivals(since_idle)
    stack.procs["api_accounts"].stop()

    b_done = max(at for webhook_id, _, at in arrivals if webhook_id in busy_b)
    burst_ids = set(accepted_a)
    a_after_b = sum(1 for webhook_id, _, at in arrivals if webhook_id in burst_ids and at > b_done)
    idle_p95, busy_p95 = idle_ms["p95"], busy_ms["p95"]
    a_rate = len(accepted_a) / drained_s
    return {
        "b_events": b_events,
        "b_interval_s": B_INTERVAL,
        "b_idle_latency_202_to_receiver_ms": idle_ms,
        "b_behind_backlog_latency_202_to_receiver_ms": busy_ms,
        "b_behind_backlog_while_a_posts_ms": posting,
        "b_behind_backlog_after_a_posted_ms": posted,
        "b_p95_ratio_backlog_over_idle": round(busy_p95 / idle_p95, 2) if idle_p95 and busy_p95 else None,
        "a_events": burst_events,
        "a_deliveries": len(accepted_a),
        "a_waiting_when_b_started": waiting_at_b_start,
        # What B's first event would have waited, first come first served: A's queue at A's rate.
        "fifo_wait_estimate_s": round(waiting_at_b_start / a_rate, 1),
        "a_received_after_b_done": a_after_b,
        "a_accepted_in_s": round(burst_accepted[0] - t0, 1),
        "a_drained_in_s": round(drained_s, 1),
        "a_deliveries_per_s": round(a_rate, 1),
        "exactly_once": exactly_once([*accepted_a, *idle_b, *busy_b], (a[0] for a in arrivals)).as_json(),
    }


async def _create_endpoint(api: httpx.AsyncClient, auth: dict[str, str], url: str) -> None:
    response = await api.post("/v1/endpoints", json={"url": url, "events": ["TRACKING_UPDATE"]}, headers=auth)
    response.raise_for_status()


async def _post(api: httpx.AsyncClient, auth: dict[str, str], event: dict[str, Any]) -> list[tuple[str, float]]:
    response = await api.post("/v1/events", json=event, headers=auth)
    response.raise_for_status()
    done = time.monotonic()
    return [(d["id"], done) for d in response.json()["deliveries"]]


async def _trickle(api: httpx.AsyncClient, auth: dict[str, str], prefix: str, count: int) -> dict[str, float]:
    """`count` events, one every B_INTERVAL; each delivery id with the moment its 202 came."""
    accepted: dict[str, float] = {}
    t0 = time.monotonic()
    for i in range(count):
        await asyncio.sleep(max(0.0, t0 + i * B_INTERVAL - time.monotonic()))
        accepted.update(await _post(api, auth, tracking_event(f"{prefix}{i:04d}")))
    return accepted


async def _latencies(bench: Bench, since: int, accepted: dict[str, float]) -> dict[str, float | None]:
    """202 -> first arrival at the receiver (one clock: CLOCK_MONOTONIC, shared by the processes)."""
    first: dict[str, float] = {}
    for webhook_id, _, at in await bench.arrivals(since):
        first.setdefault(webhook_id, at)
    return summary_ms([first[d] - at for d, at in accepted.items() if d in first])
