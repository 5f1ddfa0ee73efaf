"""The Temporal floor: a minimal workflow with one trivial activity, on the service's worker settings.

python -m bench.floor_worker

Same client (pydantic converter, the AES-GCM codec, the metrics runtime when
WEBHOOKS_WORKER_METRICS_PORT is set), same sandboxed runner and worker defaults
as `worker.py`; only the work is gone. What it completes per second is the most
any Temporal-based pipeline can do on this server and machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import timedelta

from temporalio.worker import Worker

from bench.floor import FLOOR_TASK_QUEUE, FloorWorkflow, trivial


async def main() -> None:
    # Imported here: the workflow module stays free of side effects for the sandbox.
    from infra.temporal import connect, metrics_runtime
    from settings import get_settings
    from worker import cache_limits, workflow_runner

    settings = get_settings()
    port = settings.worker_metrics_port
    client = await connect(settings, runtime=metrics_runtime(settings.worker_metrics_host, port) if port else None)
    worker = Worker(
        client,
        task_queue=FLOOR_TASK_QUEUE,
        workflows=[FloorWorkflow],
        activities=[trivial],
        workflow_runner=workflow_runner(),
        **cache_limits(settings),
        graceful_shutdown_timeout=timedelta(seconds=settings.http_timeout + 5),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        logging.info("floor worker polling %r", FLOOR_TASK_QUEUE)
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
    os._exit(0)  # sdk-python#300: the runtime can crash at interpreter exit
