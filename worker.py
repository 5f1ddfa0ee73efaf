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
from activities.recover_deliveries import RecoveryActivities
from domain.activity_contract import RecoveryRequest, RecoveryResult
from domain.retry import Backoff
from infra.http import http_client
from infra.logs import configure_json_logging
from infra.network_guard import Resolver, system_resolver
from infra.temporal import connect, metrics_runtime
from services.endpoints import EndpointRegistry, SnapshotCache
from services.reruns import recover_failed
from settings import Settings, get_settings
from workflows.delivery import DeliveryWorkflow
from workflows.endpoint_registry import EndpointRegistryWorkflow
from workflows.recovery import RecoveryWorkflow

WORKFLOWS = [DeliveryWorkflow, EndpointRegistryWorkflow, RecoveryWorkflow]


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
    """Worker options bounding the workflow cache; a workflow task needs its workflow cached."""
    cached = settings.worker_cached_workflows
    return CacheLimits(max_cached_workflows=cached, max_concurrent_workflow_tasks=min(cached, 100))


@asynccontextmanager
async def delivery_worker(
    client: Client, settings: Settings, resolve: Resolver = system_resolver
) -> AsyncIterator[Worker]:
    """A configured worker with its HTTP client; the client is closed when the worker is done."""

    snapshots = SnapshotCache()

    def registries(account: str) -> EndpointRegistry:
        return EndpointRegistry(client, settings.task_queue, account, snapshots)

    async def recover(request: RecoveryRequest, progress: Callable[[int], None]) -> RecoveryResult:
        return await recover_failed(client, settings.task_queue, registries(request.account), request, progress)

    http = http_client(settings.http_timeout, allow_private_networks=settings.allow_private_networks, resolve=resolve)
    async with http:
        delivery = DeliveryActivities(
            http=http,
            endpoints=registries,
            backoff=Backoff(settings.retry_initial_interval, settings.retry_backoff, settings.retry_max_interval),
            http_timeout=settings.http_timeout,
            health=settings.health_policy(),
        )
        recovery = RecoveryActivities(recover)
        yield Worker(
            client,
            task_queue=settings.task_queue,
            workflows=WORKFLOWS,
            activities=[delivery.deliver_webhook, recovery.recover_deliveries],
            workflow_runner=workflow_runner(),
            **cache_limits(settings),
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
    client = await connect(settings, runtime=metrics_runtime(settings.worker_metrics_host, port) if port else None)
    async with delivery_worker(client, settings) as worker:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            logging.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_address)
            await stop.wait()
            logging.info("worker stopping: finishing attempts in flight")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The delivery activity logs each attempt itself; httpx would repeat it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main())
    # The SDK's runtime can crash at interpreter exit (sdk-python#300); leave cleanly.
    os._exit(0)
