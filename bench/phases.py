"""The measured phases: the pipeline (as fast as it goes, or paced), the Temporal floor, the HTTP floor."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecution

from bench.floor import FLOOR_TASK_QUEUE, FloorWorkflow
from bench.hops import hop_spans, monotonic_to_wall
from bench.procs import Stack, Usage, UsageMeter
from bench.stats import exactly_once, summary_ms
from domain.events import TrackingUpdateEvent
from domain.wire import USER_AGENT, wire_body
from infra.http import KEEPALIVE_EXPIRY_SECONDS
from tests.integration.helpers import tracking_event

POLL = 0.2
# Seconds without a new POST before a waiting phase asks visibility whether any delivery still runs.
STALL_S = 2.0


class DeliveriesEnded(RuntimeError):
    """Every delivery of a phase has ended and some POSTs never came: waiting longer is pointless."""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Bench:
    """What every phase shares: the processes, a Temporal client, HTTP clients, the endpoints."""

    stack: Stack
    client: Client
    api: httpx.AsyncClient
    rx: httpx.AsyncClient
    run_id: str
    concurrency: int
    endpoints: list[str] = field(default_factory=list)

    async def received_total(self) -> int:
        total: int = (await self.rx.get("/_count")).json()["total"]
        return total

    async def arrivals(self, since: int) -> list[tuple[str, str, float]]:
        rows: list[list[Any]] = (await self.rx.get("/_arrivals", params={"since": since})).json()["arrivals"]
        return [(str(r[0]), str(r[1]), float(r[2])) for r in rows]

    async def wait_received(
        self, since: int, count: int, timeout: float, what: str, deliveries: str | None = None
    ) -> None:
        """Until the receiver has `count` POSTs after index `since` (bounded; the processes must stay up).

        With `deliveries` (a visibility query of the phase's delivery workflows), a wait that
        stalls is checked against visibility: once none of them is running, no POST is still
        to come, and `DeliveriesEnded` says so at once instead of at the timeout. The check
        runs only after `STALL_S` without a new POST, so a phase that progresses pays nothing."""
        deadline = time.monotonic() + timeout
        got, changed = -1, time.monotonic()
        while True:
            now_got = await self.received_total() - since
            if now_got >= count:
                return
            now = time.monotonic()
            if now_got != got:
                got, changed = now_got, now
            elif deliveries is not None and now - changed >= STALL_S:
                running = await self.client.count_workflows(f'{deliveries} AND ExecutionStatus = "Running"')
                if running.count == 0:
                    raise DeliveriesEnded(f"{what}: every delivery ended; the receiver got {got} of {count} POSTs")
                changed = now  # some still run (retrying, rate-limited): look again after another stall
            self.stack.check_alive()
            if now > deadline:
                raise TimeoutError(f"{what}: the receiver got {got} of {count} POSTs within {timeout:g}s")
            await asyncio.sleep(POLL)

    async def wait_closed(self, query: str, count: int, timeout: float) -> list[WorkflowExecution]:
        """Until visibility shows `count` closed workflows matching `query`; then all of them."""
        deadline = time.monotonic() + timeout
        closed = 0
        for _ in range(int(timeout / POLL) + 1):
            closed = (await self.client.count_workflows(f'{query} AND ExecutionStatus != "Running"')).count
            if closed >= count:
                return [wf async for wf in self.client.list_workflows(query)]
            self.stack.check_alive()
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL)
        raise TimeoutError(f"{closed} of {count} workflows closed within {timeout:g}s ({query})")


def completion_timeout(count: int) -> float:
    """Generous: ten times the slowest rate seen on these machines, at least a minute."""
    return max(60.0, count / 3.0)


def per_unit(usage: Usage, units: int) -> dict[str, float]:
    return {name: round(cpu / max(units, 1), 6) for name, cpu in usage.cpu_s.items()}


def usage_json(usage: Usage, units: int) -> dict[str, Any]:
    return {
        "cpu_s": {k: round(v, 2) for k, v in usage.cpu_s.items()},
        "cpu_s_per_delivery": per_unit(usage, units),
        "peak_rss_mib": {k: round(v, 1) for k, v in usage.peak_rss_mib.items()},
        "wall_s": round(usage.wall_s, 2),
        "foreign_cpu_s": round(usage.foreign_cpu_s, 2),
        # Share of the machine's CPU capacity used by other work during the phase: contamination.
        "foreign_cpu_share": round(usage.foreign_cpu_s / max(usage.wall_s * (os.cpu_count() or 1), 1e-9), 3),
    }


def closed_stats(closed: list[WorkflowExecution], wall0: float) -> tuple[float, Counter[str]]:
    """Seconds from `wall0` until the last workflow closed, and how they ended."""
    ends = [wf.close_time.timestamp() for wf in closed if wf.close_time is not None]
    statuses = Counter(wf.status.name if wf.status is not None else "UNKNOWN" for wf in closed)
    return max(ends) - wall0, statuses


async def pipeline(bench: Bench, label: str, events: int, rate: float | None = None) -> dict[str, Any]:
    """`events` TRACKING_UPDATEs through the API: closed-loop (`concurrency` in flight) or paced at
    `rate` events/s; measured until the last DeliveryWorkflow closed."""
    prefix = f"{bench.run_id}-{label}-"
    bodies = [tracking_event(f"{prefix}{i:06d}") for i in range(events)]
    accepted: dict[str, tuple[float, float]] = {}  # delivery id -> (POST sent, 202 received)
    api_ms: list[float] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(bench.concurrency if rate is None else 10 * bench.concurrency)

    async def post(body: dict[str, Any]) -> None:
        async with gate:
            sent = time.monotonic()
            try:
                response = await bench.api.post("/v1/events", json=body)
            except httpx.HTTPError as err:
                failures.append(f"{body['id']}: {type(err).__name__} {err}")
                return
            done = time.monotonic()
        if response.status_code != 202:
            failures.append(f"{body['id']}: {response.status_code} {response.text[:200]}")
            return
        api_ms.append(done - sent)
        for delivery in response.json()["deliveries"]:
            accepted[delivery["id"]] = (sent, done)

    since = await bench.received_total()
    wall0 = time.time()
    async with UsageMeter(bench.stack.pids) as meter:
        t0 = time.monotonic()
        if rate is None:
            await asyncio.gather(*(post(b) for b in bodies))
        else:
            tasks = []
            for i, body in enumerate(bodies):
                await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
                tasks.append(asyncio.create_task(post(body)))
            await asyncio.gather(*tasks)
        last_202 = max((a for _, a in accepted.values()), default=time.monotonic())
        expected = len(accepted)
        query = f'WorkflowType = "DeliveryWorkflow" AND WorkflowId STARTS_WITH "delivery/default/{prefix}"'
        ended_early: str | None = None
        try:
            await bench.wait_received(since, expected, completion_timeout(expected), f"pipeline {label}", query)
        except DeliveriesEnded as ended:
            ended_early = str(ended)
        reported_after = time.monotonic() - last_202
        closed = await bench.wait_closed(query, expected, completion_timeout(expected))
        usage = meter.read()
    duration, statuses = closed_stats(closed, wall0)
    # Everything the receiver got meanwhile counts: nothing else may arrive during a phase.
    arrivals = await bench.arrivals(since)
    check = exactly_once(accepted, (a[0] for a in arrivals))
    undelivered = None
    if ended_early is not None:
        undelivered = {
            "count": len(check.missing),
            "ids": check.missing[:20],
            "seconds_after_last_202": round(reported_after, 1),
            "message": ended_early,
        }
        log(f"  {label}: {len(check.missing)} deliveries ended without reaching the receiver, e.g. {check.missing[:3]}")
    first_arrival: dict[str, float] = {}
    for webhook_id, _, at in arrivals:
        first_arrival.setdefault(webhook_id, at)
    after_202 = [first_arrival[d] - accepted[d][1] for d in accepted if d in first_arrival]
    after_send = [first_arrival[d] - accepted[d][0] for d in accepted if d in first_arrival]
    # Paced, the latency is the target (issue 16): where it goes, hop by hop, from the histories.
    hops = None
    if rate is not None:
        accepted_at = {d: at for d, (_, at) in accepted.items()}
        hops = await hop_spans(bench.client, accepted_at, first_arrival, monotonic_to_wall())
    return {
        "label": label,
        "mode": "closed-loop" if rate is None else "paced",
        "concurrency": bench.concurrency if rate is None else None,
        "offered_events_per_s": rate,
        "events": events,
        "endpoints": len(bench.endpoints),
        "deliveries": expected,
        "post_failures": failures[:20],
        "accepted_events_per_s": round(len(api_ms) / max(last_202 - t0, 1e-9), 1),
        "deliveries_per_s": round(expected / duration, 1),
        "duration_s": round(duration, 2),
        "workflow_status": dict(statuses),
        "latency_202_to_receiver_ms": summary_ms(after_202),
        "latency_post_sent_to_receiver_ms": summary_ms(after_send),
        "hops_ms": hops,
        "api_post_events_ms": summary_ms(api_ms),
        "delivery_ids": sorted(accepted),
        "received_ids": [a[0] for a in arrivals],
        "exactly_once": check.as_json(),
        "ended_undelivered": undelivered,
        **usage_json(usage, expected),
    }


async def temporal_floor(bench: Bench, count: int, label: str = "floor") -> dict[str, Any]:
    """`count` minimal workflows (one trivial activity) started by the same client, `concurrency` starts
    in flight; measured until the last one closed."""
    prefix = f"floor/{bench.run_id}/{label}/"
    gate = asyncio.Semaphore(bench.concurrency)

    async def start(i: int) -> None:
        async with gate:
            await bench.client.start_workflow(FloorWorkflow.run, i, id=f"{prefix}{i}", task_queue=FLOOR_TASK_QUEUE)

    wall0 = time.time()
    async with UsageMeter(bench.stack.pids) as meter:
        t0 = time.monotonic()
        await asyncio.gather(*(start(i) for i in range(count)))
        started = time.monotonic() - t0
        query = f'WorkflowType = "FloorWorkflow" AND WorkflowId STARTS_WITH "{prefix}"'
        closed = await bench.wait_closed(query, count, completion_timeout(count))
        usage = meter.read()
    duration, statuses = closed_stats(closed, wall0)
    spans = [(wf.close_time - wf.start_time).total_seconds() for wf in closed if wf.close_time is not None]
    return {
        "workflows": count,
        "concurrency": bench.concurrency,
        "started_per_s": round(count / started, 1),
        "workflows_per_s": round(count / duration, 1),
        "duration_s": round(duration, 2),
        "workflow_status": dict(statuses),
        "start_to_close_ms": summary_ms(spans),
        **usage_json(usage, count),
    }


async def http_floor(bench: Bench, count: int) -> dict[str, Any]:
    """`count` POSTs of the pipeline's very body, straight to the receiver, from one shared
    httpx.AsyncClient with `concurrency` in flight."""
    body = wire_body(TrackingUpdateEvent.model_validate(tracking_event("http-floor")))
    prefix = f"http-floor/{bench.run_id}/"
    url = f"{bench.stack.receiver_url}/ok/http-floor"
    gate = asyncio.Semaphore(bench.concurrency)
    sent_at: dict[str, float] = {}
    failures: list[str] = []
    # The worker's own limits (infra/http.py).
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS)

    async with httpx.AsyncClient(limits=limits, timeout=10, follow_redirects=False) as http:

        async def send(i: int) -> None:
            webhook_id = f"{prefix}{i}"
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "webhook-id": webhook_id,
                "webhook-timestamp": str(int(time.time())),
            }
            async with gate:
                sent_at[webhook_id] = time.monotonic()
                response = await http.post(url, content=body.encode(), headers=headers)
                response.json()  # what the worker does to judge a response
            if response.status_code != 200:
                failures.append(f"{webhook_id}: {response.status_code}")

        since = await bench.received_total()
        async with UsageMeter(bench.stack.pids) as meter:
            t0 = time.monotonic()
            await asyncio.gather(*(send(i) for i in range(count)))
            duration = time.monotonic() - t0
            usage = meter.read()
    arrivals = await bench.arrivals(since)
    check = exactly_once(sent_at, (a[0] for a in arrivals))
    latencies = [at - sent_at[webhook_id] for webhook_id, _, at in arrivals if webhook_id in sent_at]
    return {
        "posts": count,
        "concurrency": bench.concurrency,
        "posts_per_s": round(count / duration, 1),
        "duration_s": round(duration, 2),
        "post_failures": failures[:20],
        "delivery_ids": sorted(sent_at),
        "received_ids": [a[0] for a in arrivals],
        "latency_sent_to_receiver_ms": summary_ms(latencies),
        "exactly_once": check.as_json(),
        **usage_json(usage, count),
    }
