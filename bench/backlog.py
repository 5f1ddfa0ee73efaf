"""The worker and the log with thousands of deliveries in backoff."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.growth import log_vs_raw
from bench.histories import error_event
from bench.phases import Bench, completion_timeout, pipeline
from bench.procs import UsageMeter, rss_kib
from bench.stats import exactly_once, summary_ms
from domain.delivery import DEFAULT_ACCOUNT
from domain.ids import registry_workflow_id
from services.endpoints import EndpointRegistry, SnapshotCache
from workflows.endpoint_registry import EndpointRegistryWorkflow

# Successful deliveries the worker makes before its idle RSS is read.
WARM_UP = 2_000


async def _steady_rss_mib(bench: Bench, name: str, seconds: float) -> dict[str, float]:
    samples = []
    for _ in range(int(seconds / 0.25)):
        samples.append(rss_kib(bench.stack.procs[name].pid) / 1024)
        await asyncio.sleep(0.25)
    return {"median": round(statistics.median(samples), 1), "max": round(max(samples), 1)}


async def _timed(calls: int, call: Callable[[], Awaitable[object]]) -> dict[str, float | None]:
    spans = []
    for _ in range(calls):
        t0 = time.monotonic()
        await call()
        spans.append(time.monotonic() - t0)
    return summary_ms(spans)


async def probes(bench: Bench) -> dict[str, Any]:
    """Hints at where a delivery's time goes: the registry read every attempt and event makes (a
    describe while the snapshot is current; a query after a change), and one visibility count."""
    registry = EndpointRegistry(bench.client, bench.stack.task_queue, DEFAULT_ACCOUNT, SnapshotCache())
    endpoint = bench.endpoints[0]
    handle = bench.client.get_workflow_handle_for(EndpointRegistryWorkflow.run, registry_workflow_id(DEFAULT_ACCOUNT))
    query = 'WorkflowType = "DeliveryWorkflow" AND WebhookAccount = "default"'
    return {
        "registry_read_ms": await _timed(20, lambda: registry.for_delivery(endpoint)),
        "registry_query_ms": await _timed(20, lambda: handle.query(EndpointRegistryWorkflow.snapshot)),
        "visibility_count_ms": await _timed(20, lambda: bench.client.count_workflows(query)),
    }


async def list_latency(bench: Bench, requests: int = 50) -> dict[str, Any]:
    """`GET /v1/deliveries` (first page, default limit) `requests` times in a row, with what is stored."""
    stored = (await bench.client.count_workflows('WorkflowType = "DeliveryWorkflow"')).count
    running = await bench.client.count_workflows('WorkflowType = "DeliveryWorkflow" AND ExecutionStatus = "Running"')
    spans = []
    rows = 0
    async with UsageMeter(bench.stack.pids) as meter:
        for _ in range(requests):
            t0 = time.monotonic()
            response = await bench.api.get("/v1/deliveries")
            spans.append(time.monotonic() - t0)
            response.raise_for_status()
            rows = len(response.json()["data"])
        usage = meter.read()
    return {
        "cpu_ms_per_request": {k: round(1000 * v / requests, 1) for k, v in usage.cpu_s.items()},
        "foreign_cpu_share": round(usage.foreign_cpu_s / max(usage.wall_s * (os.cpu_count() or 1), 1e-9), 3),
        "requests": requests,
        "probes_now": await probes(bench),
        "deliveries_stored": stored,
        "deliveries_running": running.count,
        "rows_on_first_page": rows,
        "latency_ms": summary_ms(spans),
    }


async def backlog(bench: Bench, deliveries: int, endpoints: int, settle: float = 5.0) -> dict[str, Any]:
    """`deliveries` waiting in retry backoff: a fresh worker (retries after an hour), its RSS once warm
    and idle, then with the backlog, and the log's first page while they wait."""
    stack = bench.stack
    await stack.restart_worker()
    fresh = await _steady_rss_mib(bench, "worker", 3.0)
    # Idle means a worker that has served traffic: a burst of successful deliveries
    # (as large as the backlog's, up to WARM_UP: the workflow cache holds at most 100
    # either way) brings its heap to the size work gives it, so what the backlog adds
    # on top is the backlog's own cost.
    warm = await pipeline(bench, "warm-worker", -(-min(deliveries, WARM_UP) // max(len(bench.endpoints), 1)))
    await asyncio.sleep(settle)
    idle = await _steady_rss_mib(bench, "worker", 3.0)

    since = await bench.received_total()
    failing = []
    for i in range(endpoints):
        body = {
            "url": f"{stack.receiver_url}/fail/ep{i}",
            "events": ["ORDER_ERROR"],
            "retry": {"enabled": True, "max_retries": 3},
        }
        response = await bench.api.post("/v1/endpoints", json=body)
        response.raise_for_status()
        failing.append(response.json()["id"])

    events = -(-deliveries // endpoints)
    prefix = f"{bench.run_id}-backlog-"
    accepted: list[str] = []
    gate = asyncio.Semaphore(bench.concurrency)

    async def post(i: int) -> None:
        async with gate:
            response = await bench.api.post("/v1/events", json=error_event(f"{prefix}{i:06d}"))
        response.raise_for_status()
        accepted.extend(d["id"] for d in response.json()["deliveries"])

    wall0 = time.monotonic()
    async with UsageMeter(stack.pids) as meter:
        await asyncio.gather(*(post(i) for i in range(events)))
        # Each delivery's first POST (500), plus the failing endpoints' first connections.
        await bench.wait_received(since, len(accepted) + endpoints, completion_timeout(len(accepted)), "backlog")
        fill_s = time.monotonic() - wall0
        build = meter.read()
    await asyncio.sleep(settle)
    async with UsageMeter(stack.pids) as waiting:
        with_backlog = await _steady_rss_mib(bench, "worker", 5.0)
        idle_cpu = waiting.read()
    log = await list_latency(bench)
    raw = await log_vs_raw(bench)
    arrivals = [a[0] for a in await bench.arrivals(since) if a[0].startswith(f"delivery/{DEFAULT_ACCOUNT}/{prefix}")]
    return {
        "deliveries_in_backoff": len(accepted),
        "failing_endpoints": endpoints,
        "fill_s": round(fill_s, 1),
        "fill_deliveries_per_s": round(len(accepted) / fill_s, 1),
        "warm_up_exactly_once": warm["exactly_once"]["ok"],
        "first_attempts_exactly_once": exactly_once(accepted, arrivals).as_json(),
        "worker_rss_fresh_mib": fresh,
        "worker_rss_idle_mib": idle,
        "worker_rss_with_backlog_mib": with_backlog,
        "worker_rss_growth": round(with_backlog["median"] / idle["median"] - 1, 3),
        "peak_rss_while_filling_mib": {k: round(v, 1) for k, v in build.peak_rss_mib.items()},
        "cpu_s_while_waiting_5s": {k: round(v, 2) for k, v in idle_cpu.cpu_s.items()},
        "list": log,
        "log_vs_raw": raw,
    }
