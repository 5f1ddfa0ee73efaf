"""The worker: runs delivery, registry and recovery workflows and the delivery and recovery activities.

python worker.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TypedDict

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.deliver_webhook import DeliveryActivities
from activities.http_exchange import WebhookPoster
from activities.recover_deliveries import RecoveryActivities
from domain.activity_contract import RecoveryRequest, RecoveryResult
from infra.http import http_client
from infra.logs import configure_json_logging
from infra.network_guard import Resolver, system_resolver
from infra.temporal import UpdateSlots, connect, metrics_runtime
from infra.tracing import Tracing, tracing_from_environment
from infra.worker_health import serve_health
from services.endpoints import EndpointRegistry, SnapshotCache
from services.flow import EndpointFlow
from services.notices import Notices
from services.reruns import recover_failed
from settings import Settings, get_settings
from workflows.delivery import DeliveryWorkflow
from workflows.endpoint_flow import EndpointFlowWorkflow
from workflows.endpoint_registry import EndpointRegistryWorkflow
from workflows.recovery import RecoveryWorkflow

WORKFLOWS = [DeliveryWorkflow, EndpointRegistryWorkflow, EndpointFlowWorkflow, RecoveryWorkflow]


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox still refuses non-deterministic calls (clocks, randomness, I/O)
    inside workflows, but no longer re-imports their modules for every run.

    Our workflow modules hold no state and do nothing at import, so the
    re-import bought no isolation, only CPU and memory for every workflow run.
    """
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_all_modules())


class CacheLimits(TypedDict):
    max_cached_workflows: int
    max_concurrent_workflow_tasks: int


def cache_limits(settings: Settings) -> CacheLimits:
    """Worker options bounding the workflow cache (a workflow task needs its workflow cached)
    and the workflow tasks a worker takes at once: no more than it can run first attempts
    (local activities, inside their task), so a backlog of first attempts waits in Temporal's
    task queue, where priority and fairness between accounts order it, not in the worker,
    where local activities queue first come first served.

    And no more than half the cache: a first attempt's workflow must stay cached until the
    attempt is recorded, which can be after its task ended (the SDK heartbeats a task whose
    local activity runs long). With a slot for every cache entry, a new task pushed such a
    workflow out, cancelling its attempt, and the task's retry POSTed again (measured: 1,072
    doubles among 20,000 first attempts of a burst; tests/integration/test_queued_first_attempts.py)."""
    cached = settings.worker_cached_workflows
    tasks = min(cached // 2, 100, settings.worker_max_activities)  # settings keep each >= 1
    return CacheLimits(max_cached_workflows=cached, max_concurrent_workflow_tasks=tasks)


@asynccontextmanager
async def delivery_worker(
    client: Client, settings: Settings, resolve: Resolver = system_resolver, tracing: Tracing | None = None
) -> AsyncIterator[Worker]:
    """A configured worker with its HTTP client; the client is closed when the worker is done.
    Its workflows and activities are traced when `client` was connected with tracing; its POSTs with `tracing`."""

    snapshots, slots = SnapshotCache(), UpdateSlots()
    secrets = settings.secret_box()

    def registries(account: str) -> EndpointRegistry:
        return EndpointRegistry(client, settings.task_queue, account, snapshots, secrets, slots)

    def notices(account: str) -> Notices:
        return Notices(client, settings.task_queue, account, registries(account))

    def schedules(account: str) -> EndpointFlow:
        return EndpointFlow(client, settings.task_queue, account, slots)

    async def recover(request: RecoveryRequest, progress: Callable[[int, int], None]) -> RecoveryResult:
        return await recover_failed(client, settings.task_queue, registries(request.account), request, progress)

    http = http_client(
        settings.http_timeout,
        allow_private_networks=settings.allow_private_networks,
        resolve=resolve,
        # Retries' activities and first attempts' local activities, each up to this many at once.
        posts_at_once=2 * settings.worker_max_activities,
    )
    if tracing:
        tracing.instrument_http(http)

    async with http:
        delivery = DeliveryActivities(
            poster=WebhookPoster(http),
            endpoints=registries,
            schedules=schedules,
            notices=notices,
            backoff=settings.backoff(),
            http_timeout=settings.http_timeout,
            health=settings.health_policy(),
            secrets=secrets,
        )
        recovery = RecoveryActivities(recover)
        yield Worker(
            client,
            task_queue=settings.task_queue,
            workflows=WORKFLOWS,
            activities=[delivery.deliver_webhook, recovery.recover_deliveries],
            workflow_runner=workflow_runner(),
            **cache_limits(settings),
            max_concurrent_activities=settings.worker_max_activities,
            # First attempts run as local activities: the same bound on POSTs in flight.
            max_concurrent_local_activities=settings.worker_max_activities,
            # Lets a POST in flight finish when the worker is asked to stop.
            graceful_shutdown_timeout=timedelta(seconds=settings.http_timeout + 5),
            # The registry is read by query after each change; when the worker caching
            # it dies, those reads move to another worker after this, not 10 s.
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
        )


async def main() -> None:
    settings = get_settings()
    if settings.log_format == "json":
        configure_json_logging()
    port = settings.worker_metrics_port
    tracing = tracing_from_environment("webhooks-worker")
    runtime = metrics_runtime(settings.worker_metrics_host, port) if port else None
    client = await connect(settings, runtime=runtime, tracing=tracing)
    async with delivery_worker(client, settings, tracing=tracing) as worker:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker, serve_health(worker, settings.worker_health_port):
            logging.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_address)
            await stop.wait()
            logging.info("worker stopping: finishing attempts in flight")
    if tracing:
        tracing.flush()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The delivery activity logs each attempt itself; httpx would repeat it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main())
    # The SDK's runtime can crash at interpreter exit (sdk-python#300); leave cleanly.
    os._exit(0)
