"""How cost grows: throughput and latency with 1, 2 and 4 workers on one server, and the delivery
log's first page, against one raw visibility listing, as the stored deliveries grow.

`python -m bench --growth` runs this alone (results in growth.json / growth.txt); the full bench
measures the log against the raw listing once, with its backlog stored (`log_vs_raw`).

Storing 50,000 deliveries through the whole pipeline would take ~28 minutes at ~30/s. They are
stored with every worker stopped instead: the API accepts each event and starts one delivery
workflow per endpoint as it always does (the server writes the same start, search attributes and
memo), but no worker runs them, so they stay pending. That is ~5x faster (the start is the part
of a delivery the log reads) and it is the log's favourable case: visibility lists running rows
first. The closed rows of the earlier phases sit behind them.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, ListWorkflowExecutionsRequest

from bench.phases import Bench, log, pipeline
from bench.procs import UsageMeter
from bench.stats import summary_ms, table
from domain.delivery import DEFAULT_ACCOUNT
from services.delivery_log import LogFilter
from tests.integration.helpers import tracking_event

PAGE_LIMIT = 50  # GET /v1/deliveries' default limit


async def _spans(calls: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    spans = []
    for _ in range(calls):
        t0 = time.monotonic()
        await call()
        spans.append(time.monotonic() - t0)
    return spans


async def log_vs_raw(bench: Bench, rounds: int = 10, calls: int = 5) -> dict[str, Any]:
    """The first page of `GET /v1/deliveries` (HTTP, through the API) against one raw
    `ListWorkflowExecutions` call with the log's own filter and page size on the same store,
    and against the SDK's `list_workflows` of that page (decoding each row), interleaved in
    `rounds` so drift weighs on each alike. Ratios are of the medians."""
    query = LogFilter().visibility_query(DEFAULT_ACCOUNT)
    client = bench.client
    request = ListWorkflowExecutionsRequest(namespace=client.namespace, page_size=PAGE_LIMIT, query=query)

    async def page() -> None:
        response = await bench.api.get("/v1/deliveries", params={"limit": PAGE_LIMIT})
        response.raise_for_status()

    async def raw() -> None:
        await client.workflow_service.list_workflow_executions(request)

    async def sdk() -> None:
        _ = [e async for e in client.list_workflows(query, limit=PAGE_LIMIT, page_size=PAGE_LIMIT)]

    spans: dict[str, list[float]] = {"page": [], "raw_list": [], "sdk_list": []}
    async with UsageMeter(bench.stack.pids) as meter:
        for _ in range(rounds):
            for name, call in (("page", page), ("raw_list", raw), ("sdk_list", sdk)):
                spans[name] += await _spans(calls, call)
        usage = meter.read()
    stored = (await client.count_workflows('WorkflowType = "DeliveryWorkflow"')).count
    running = await client.count_workflows('WorkflowType = "DeliveryWorkflow" AND ExecutionStatus = "Running"')
    p50 = {name: statistics.median(s) for name, s in spans.items()}
    return {
        "deliveries_stored": stored,
        "deliveries_running": running.count,
        "page_size": PAGE_LIMIT,
        "query": query,
        "calls_each": rounds * calls,
        "latency_ms": {name: summary_ms(s) for name, s in spans.items()},
        "page_over_raw_list": round(p50["page"] / p50["raw_list"], 2),
        "page_over_sdk_list": round(p50["page"] / p50["sdk_list"], 2),
        "foreign_cpu_share": round(usage.foreign_cpu_s / max(usage.wall_s * (os.cpu_count() or 1), 1e-9), 3),
    }


async def store(bench: Bench, label: str, deliveries: int) -> float:
    """Posts events until `deliveries` more are stored (one per subscribed endpoint and event);
    returns the deliveries stored per second. Every worker must be stopped first."""
    prefix = f"{bench.run_id}-{label}-"
    per_event = len(bench.endpoints)
    gate = asyncio.Semaphore(bench.concurrency)
    t0 = time.monotonic()

    async def post(i: int) -> None:
        async with gate:
            response = await bench.api.post("/v1/events", json=tracking_event(f"{prefix}{i:06d}"))
        response.raise_for_status()

    await asyncio.gather(*(post(i) for i in range(-(-deliveries // per_event))))
    return deliveries / (time.monotonic() - t0)


async def workers_table(bench: Bench, events: int, counts: list[int]) -> list[dict[str, Any]]:
    """The pipeline at full speed with 1, 2, 4... workers polling the same task queue."""
    rows = []
    for count in counts:
        while len(bench.stack.workers()) < count:
            bench.stack.start_worker(name=f"worker{len(bench.stack.workers()) + 1}")
        await _until_polling(bench)
        log(f"growth: {count} worker(s), {events} events")
        run = await pipeline(bench, f"w{count}", events)
        rows.append(
            {
                "workers": count,
                "deliveries": run["deliveries"],
                "deliveries_per_s": run["deliveries_per_s"],
                "latency_202_to_receiver_ms": run["latency_202_to_receiver_ms"],
                "exactly_once_ok": run["exactly_once"]["ok"],
                "cpu_s_per_delivery": run["cpu_s_per_delivery"],
                "foreign_cpu_share": run["foreign_cpu_share"],
            }
        )
    return rows


async def _until_polling(bench: Bench, timeout: float = 60.0) -> None:
    """Until every running worker polls the task queue (its PID is in the poller's identity)."""
    request = DescribeTaskQueueRequest(
        namespace=bench.client.namespace,
        task_queue=TaskQueue(name=bench.stack.task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = time.monotonic() + timeout
    while True:
        described = await bench.client.workflow_service.describe_task_queue(request)
        identities = " ".join(p.identity for p in described.pollers)
        pids = [bench.stack.procs[w].pid for w in bench.stack.workers()]
        if all(f"{pid}@" in identities for pid in pids):
            return
        bench.stack.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers {pids} not polling after {timeout:g}s: {identities}")
        await asyncio.sleep(0.5)


async def log_table(bench: Bench, sizes: list[int]) -> list[dict[str, Any]]:
    """Every worker stopped, deliveries stored up to each size, the first page against the raw list."""
    for worker in bench.stack.workers():
        bench.stack.procs.pop(worker).stop()
    rows = []
    for size in sizes:
        stored = (await bench.client.count_workflows('WorkflowType = "DeliveryWorkflow"')).count
        rate = None
        if size > stored:
            log(f"growth: storing {size - stored} deliveries (workers stopped) up to {size}")
            rate = round(await store(bench, f"s{size}", size - stored), 1)
        measured = await log_vs_raw(bench)
        log(
            f"  {measured['deliveries_stored']} stored: page p50 {measured['latency_ms']['page']['p50']} ms, "
            f"raw list p50 {measured['latency_ms']['raw_list']['p50']} ms ({measured['page_over_raw_list']}x)"
        )
        rows.append({"target_stored": size, "stored_per_s": rate, **measured})
    return rows


def render_growth(results: dict[str, Any]) -> str:
    workers = [
        [
            r["workers"],
            r["deliveries"],
            r["deliveries_per_s"],
            r["latency_202_to_receiver_ms"]["p50"],
            r["latency_202_to_receiver_ms"]["p95"],
            round(100 * r["foreign_cpu_share"]),
        ]
        for r in results["workers"]
    ]
    pages = [
        [
            r["deliveries_stored"],
            r["deliveries_running"],
            r["latency_ms"]["page"]["p50"],
            r["latency_ms"]["raw_list"]["p50"],
            r["latency_ms"]["sdk_list"]["p50"],
            r["page_over_raw_list"],
            r["stored_per_s"],
        ]
        for r in results["log"]
    ]
    return "\n".join(
        [
            "Workers on one dev server (pipeline at full speed; latency 202->receiver)",
            table(workers, ["workers", "deliveries", "done /s", "p50 ms", "p95 ms", "foreign %"]),
            "",
            f"First log page ({PAGE_LIMIT} rows) against one raw ListWorkflowExecutions of the same filter",
            table(pages, ["stored", "running", "page p50 ms", "raw p50 ms", "SDK p50 ms", "page/raw", "stored /s"]),
        ]
    )
