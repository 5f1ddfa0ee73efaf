"""Fairness between accounts: account B's 202->receiver latency, idle and behind account A's backlog.

Part of `make bench`; alone (a fresh stack, this phase only, results in
bench/results/fairness.json): python -m bench.fairness [--events 200] [--worker-env KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.hops import hop_spans, monotonic_to_wall
from bench.phases import Bench, completion_timeout, pipeline, usage_json
from bench.procs import ROOT, Stack, UsageMeter
from bench.stats import exactly_once, summary_ms
from tests.conftest import free_port
from tests.integration.helpers import tracking_event

ACCOUNT_A, ACCOUNT_B = "bench-a", "bench-b"
B_INTERVAL = 0.25  # B posts one event at a time, this far apart: a trickle, not a burst of its own
A_SAMPLE = 40  # A's deliveries whose histories are read for the hop comparison


async def fairness(
    bench: Bench,
    burst_events: int,
    b_events: int,
    backlog_target: int = 500,
    a_endpoints: int | None = None,
    api_env: dict[str, str] | None = None,
    cpu_burners: int = 0,
) -> dict[str, Any]:
    """B's events, one every B_INTERVAL, first on an idle service, then while A's burst of
    `burst_events` (to as many endpoints as the pipeline's, `concurrency` posts in flight)
    waits for the worker; B starts once `backlog_target` of A's deliveries wait (or A's
    burst is all accepted, for tiny runs). Measured until every delivery was received.
    `a_endpoints`: A's endpoints, by default as many as the pipeline's; `api_env`: more
    variables for the API the two accounts post to. `cpu_burners` > 0: no burst from A;
    B's second trickle runs beside that many processes spinning on the CPU instead, a
    load of the same kind (CPU) without any task queued ahead of B's: B's floor."""
    stack = bench.stack
    k = a_endpoints or max(len(bench.endpoints), 1)
    tokens = {ACCOUNT_A: secrets.token_urlsafe(16), ACCOUNT_B: secrets.token_urlsafe(16)}
    env = {"WEBHOOKS_API_TOKENS": "{" + ", ".join(f'"{a}": "{t}"' for a, t in tokens.items()) + "}"}
    url = await stack.start_api("api_accounts", free_port(), **env, **(api_env or {}))
    limits = httpx.Limits(max_connections=4 * bench.concurrency, keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as api:
        auth_a = {"Authorization": f"Bearer {tokens[ACCOUNT_A]}"}
        auth_b = {"Authorization": f"Bearer {tokens[ACCOUNT_B]}"}
        since = await bench.received_total()
        for i in range(k):
            await _create_endpoint(api, auth_a, f"{stack.receiver_url}/ok/fair-a{i}")
        await _create_endpoint(api, auth_b, f"{stack.receiver_url}/ok/fair-b")
        await bench.wait_received(since, k + 1, 60, "fairness: first connections")

        since = since_idle = await bench.received_total()
        idle_b, idle_sent = await _trickle(api, auth_b, f"{bench.run_id}-fair-idle-", b_events)
        await bench.wait_received(since, len(idle_b), completion_timeout(len(idle_b)), "fairness: B idle")
        idle_ms = await _latencies(bench, since, idle_b)
        offset = monotonic_to_wall()
        idle_hops = await hop_spans(bench.client, idle_b, await _first_arrivals(bench, since), offset)

        if cpu_burners:
            under_load = await _b_under_cpu_load(bench, api, auth_b, b_events, cpu_burners, offset)
            stack.procs["api_accounts"].stop()
            return {"b_idle_latency_202_to_receiver_ms": idle_ms, "b_hops_ms": {"idle": idle_hops}} | under_load

        since = await bench.received_total()
        accepted_a: list[str] = []
        a_202: dict[str, float] = {}
        gate = asyncio.Semaphore(bench.concurrency)

        async def post_a(i: int) -> None:
            async with gate:
                accepted = await _post(api, auth_a, tracking_event(f"{bench.run_id}-fair-burst-{i:06d}"))
            accepted_a.extend(d for d, _ in accepted)
            a_202.update(accepted)

        async with UsageMeter(stack.pids) as meter:
            t0 = time.monotonic()
            burst = asyncio.gather(*(post_a(i) for i in range(burst_events)))
            burst_accepted: list[float] = []  # when A's last 202 came
            burst.add_done_callback(lambda _: burst_accepted.append(time.monotonic()))
            target = min(backlog_target, burst_events * k // 2)
            while not burst.done() and len(accepted_a) - (await bench.received_total() - since) < target:
                stack.check_alive()
                await asyncio.sleep(0.1)
            waiting_at_b_start = len(accepted_a) - (await bench.received_total() - since)
            b_began = time.monotonic()
            busy_b, busy_sent = await _trickle(api, auth_b, f"{bench.run_id}-fair-busy-", b_events)
            b_ended = time.monotonic()
            await burst
            expected = len(accepted_a) + len(busy_b)
            await bench.wait_received(since, expected, completion_timeout(expected), "fairness: A's burst and B")
            drained_s = time.monotonic() - t0
            usage = meter.read()
        busy_ms = await _latencies(bench, since, busy_b)
        # B's events whose 202 came while A's burst was still being posted, and after.
        busy_while = {d: at for d, at in busy_b.items() if at <= burst_accepted[0]}
        busy_after = {d: at for d, at in busy_b.items() if at > burst_accepted[0]}
        posting = await _latencies(bench, since, busy_while)
        posted = await _latencies(bench, since, busy_after)
        arrivals = await bench.arrivals(since_idle)
        first = await _first_arrivals(bench, since)
        hops = {
            "idle": idle_hops,
            "while_a_posts": await hop_spans(bench.client, busy_while, first, offset),
            "after_a_posted": await hop_spans(bench.client, busy_after, first, offset),
        }
        # For comparison, A's deliveries accepted while B posted: what fairness let B skip.
        a_beside_b = [d for d, at in a_202.items() if b_began <= at <= b_ended][:A_SAMPLE]
        hops["a_accepted_meanwhile"] = await hop_spans(bench.client, {d: a_202[d] for d in a_beside_b}, first, offset)
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
        # Where B's time went, hop by hop (bench/hops.py), and B's own POSTs to the API.
        "b_hops_ms": hops,
        "b_api_post_ms": {"idle": _api_ms(idle_b, idle_sent), "behind_backlog": _api_ms(busy_b, busy_sent)},
        # 202->receiver leaves out what the API took after the start; from the POST's sending on:
        "b_post_sent_to_receiver_ms": {
            "idle": await _latencies(bench, since_idle, idle_sent),
            "behind_backlog": await _latencies(bench, since_idle, busy_sent),
        },
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
        "usage_during_burst": usage_json(usage, len(accepted_a) + len(busy_b)),
        "exactly_once": exactly_once([*accepted_a, *idle_b, *busy_b], (a[0] for a in arrivals)).as_json(),
    }


async def _b_under_cpu_load(
    bench: Bench, api: httpx.AsyncClient, auth_b: dict[str, str], b_events: int, burners: int, offset: float
) -> dict[str, Any]:
    spin = _spinners(burners)
    try:
        since = await bench.received_total()
        async with UsageMeter(bench.stack.pids) as meter:
            busy_b, busy_sent = await _trickle(api, auth_b, f"{bench.run_id}-fair-cpu-", b_events)
            await bench.wait_received(since, len(busy_b), completion_timeout(len(busy_b)), "fairness: B on a busy CPU")
            usage = meter.read()
    finally:
        for burner in spin:  # each by its own PID
            burner.kill()
            burner.wait()
    first = await _first_arrivals(bench, since)
    return {
        "cpu_burners": burners,
        "b_under_cpu_load_latency_202_to_receiver_ms": await _latencies(bench, since, busy_b),
        "b_hops_ms_under_cpu_load": await hop_spans(bench.client, busy_b, first, offset),
        "b_api_post_ms_under_cpu_load": _api_ms(busy_b, busy_sent),
        "b_post_sent_to_receiver_under_cpu_load_ms": await _latencies(bench, since, busy_sent),
        "usage_under_cpu_load": usage_json(usage, len(busy_b)),
    }


def _spinners(count: int) -> list[subprocess.Popen[bytes]]:
    """Processes that only spin on the CPU; the caller stops each by its own PID."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


async def _create_endpoint(api: httpx.AsyncClient, auth: dict[str, str], url: str) -> None:
    response = await api.post("/v1/endpoints", json={"url": url, "events": ["TRACKING_UPDATE"]}, headers=auth)
    response.raise_for_status()


async def _post(api: httpx.AsyncClient, auth: dict[str, str], event: dict[str, Any]) -> list[tuple[str, float]]:
    response = await api.post("/v1/events", json=event, headers=auth)
    response.raise_for_status()
    done = time.monotonic()
    return [(d["id"], done) for d in response.json()["deliveries"]]


async def _trickle(
    api: httpx.AsyncClient, auth: dict[str, str], prefix: str, count: int
) -> tuple[dict[str, float], dict[str, float]]:
    """`count` events, one every B_INTERVAL; each delivery id with the moment its 202 came,
    and with the moment its POST was sent."""
    accepted: dict[str, float] = {}
    sent: dict[str, float] = {}
    t0 = time.monotonic()
    for i in range(count):
        await asyncio.sleep(max(0.0, t0 + i * B_INTERVAL - time.monotonic()))
        at = time.monotonic()
        answered = await _post(api, auth, tracking_event(f"{prefix}{i:04d}"))
        accepted.update(answered)
        sent.update((d, at) for d, _ in answered)
    return accepted, sent


def _api_ms(accepted: dict[str, float], sent: dict[str, float]) -> dict[str, float | None]:
    return summary_ms([accepted[d] - sent[d] for d in accepted])


async def _first_arrivals(bench: Bench, since: int) -> dict[str, float]:
    first: dict[str, float] = {}
    for webhook_id, _, at in await bench.arrivals(since):
        first.setdefault(webhook_id, at)
    return first


async def _latencies(bench: Bench, since: int, accepted: dict[str, float]) -> dict[str, float | None]:
    """202 -> first arrival at the receiver (one clock: CLOCK_MONOTONIC, shared by the processes)."""
    first: dict[str, float] = {}
    for webhook_id, _, at in await bench.arrivals(since):
        first.setdefault(webhook_id, at)
    return summary_ms([first[d] - at for d, at in accepted.items() if d in first])


async def alone(args: argparse.Namespace) -> dict[str, Any]:
    """A fresh stack as `make bench` starts it, warmed up with a few deliveries, then this phase."""
    workdir = Path(tempfile.mkdtemp(prefix="webhooks-fairness-"))
    worker_env = dict(kv.split("=", 1) for kv in args.worker_env)
    api_env = dict(kv.split("=", 1) for kv in args.api_env)
    stack = Stack(workdir, worker_env=worker_env)
    try:
        client = await stack.start()
        limits = httpx.Limits(max_connections=100, keepalive_expiry=1.0)
        async with (
            httpx.AsyncClient(base_url=stack.api_url, timeout=60, limits=limits) as api,
            httpx.AsyncClient(base_url=stack.receiver_url, timeout=60, limits=limits) as rx,
        ):
            bench = Bench(stack, client, api, rx, f"f{uuid.uuid4().hex[:6]}", args.concurrency)
            since = await bench.received_total()
            for i in range(args.endpoints):
                body = {"url": f"{stack.receiver_url}/ok/ep{i}", "events": ["TRACKING_UPDATE"]}
                created = await api.post("/v1/endpoints", json=body)
                created.raise_for_status()
                bench.endpoints.append(created.json()["id"])
            await bench.wait_received(since, args.endpoints, 60, "first connections")
            await pipeline(bench, "warm", 5)
            started = time.monotonic()
            result = await fairness(
                bench,
                args.events,
                args.b_events,
                args.backlog_target,
                args.endpoints,
                api_env=api_env,
                cpu_burners=args.cpu_burners,
            )
            return {
                "machine": {"cores": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
                "config": {k: str(v) for k, v in vars(args).items()},
                "fairness": result,
                "wall_s": round(time.monotonic() - started, 1),
            }
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__)
    parser.add_argument("--events", type=int, default=200, help="account A's burst (make bench: 500, 200 --quick)")
    parser.add_argument("--endpoints", type=int, default=4, help="A's endpoints, subscribed to every event")
    parser.add_argument("--b-events", type=int, default=20, help="account B's events, idle and behind A")
    parser.add_argument("--concurrency", type=int, default=32, help="A's posts in flight")
    parser.add_argument("--backlog-target", type=int, default=500, help="A's deliveries waiting when B begins")
    parser.add_argument("--worker-env", action="append", default=[], help="KEY=VALUE for the worker (repeatable)")
    parser.add_argument("--api-env", action="append", default=[], help="KEY=VALUE for the APIs (repeatable)")
    parser.add_argument(
        "--cpu-burners", type=int, default=0, help="no burst: B beside this many CPU-spinning processes instead"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fairness.json")
    args = parser.parse_args()
    try:
        results = asyncio.run(alone(args))
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["fairness"], indent=2))
    sys.stdout.flush()
    # The SDK's runtime can crash at interpreter exit (sdk-python#300); leave cleanly.
    os._exit(0 if results["fairness"].get("exactly_once", {"ok": True})["ok"] else 1)


if __name__ == "__main__":
    main()
