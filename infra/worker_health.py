"""The worker's health check: `GET /healthz` on 127.0.0.1:WEBHOOKS_WORKER_HEALTH_PORT.

`200` when the worker runs and Temporal has seen *this* worker (its identity,
`pid@host`) poll its task queue within `POLL_FRESHNESS`; `503` with the reason
otherwise (not running, Temporal unreachable, not polling, event loop stuck).

Why not a route on the metrics port: that socket belongs to the Temporal
runtime's Prometheus exporter (Rust), which serves `/metrics` and nothing else.
Why an endpoint in the worker rather than a CLI probe (`python worker.py --check`)
asking Temporal for the queue's pollers: with several replicas on one task queue,
only the worker knows which poller is itself (a probe would see the others'
polls and pass for a dead replica); the answer comes through the worker's event
loop, so a stuck loop (which delivers nothing while the SDK's Rust pollers look
alive) fails it; and a probe is a `urlopen`, not an interpreter importing the SDK
every 15 s in every replica.

The listener is the standard library's threading HTTP server, on loopback only
(the container's own healthcheck calls it): nothing to install, and it leaves
the worker's signal handling alone (uvicorn would install its own).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError
from temporalio.worker import Worker

# The server holds an idle poll up to a minute before the worker polls again
# (measured on the dev server: an idle worker's newest poll was at most 55 s old);
# a worker that has started none for twice that is not polling.
POLL_FRESHNESS = timedelta(minutes=2)
_RPC_TIMEOUT = timedelta(seconds=2)
# The healthcheck's urlopen waits 4 s: answer before it gives up.
_LOOP_TIMEOUT = 3.0
_TASK_TYPES = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


def polling_problem(identity: str, pollers: Iterable[tuple[str, datetime]], now: datetime) -> str | None:
    """None when `identity` started a poll within POLL_FRESHNESS of `now`, else what is wrong.

    Either task type counts: a worker whose activity slots are all busy stops
    polling for activities while it still polls for workflow tasks.
    """
    polls = [at for who, at in pollers if who == identity]
    if not polls:
        return f"Temporal lists no poll from {identity} on the task queue"
    idle = now - max(polls)
    if idle > POLL_FRESHNESS:
        return f"the last poll Temporal saw from {identity} started {idle.total_seconds():.0f}s ago"
    return None


class WorkerHealth:
    """Asks Temporal whether this worker polls its task queue."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self.identity = worker.config().get("identity") or worker.client.identity
        self.task_queue = worker.task_queue

    async def problem(self) -> str | None:
        if not self._worker.is_running:
            return "the worker is not running"
        client = self._worker.client
        requests = [
            DescribeTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueue(name=self.task_queue), task_queue_type=kind
            )
            for kind in _TASK_TYPES
        ]
        try:
            answers = await asyncio.gather(
                *(client.workflow_service.describe_task_queue(r, timeout=_RPC_TIMEOUT) for r in requests)
            )
        except RPCError as err:
            return f"Temporal did not answer: {err.message or err.status.name}"
        pollers = [
            (poller.identity, poller.last_access_time.ToDatetime(tzinfo=UTC))
            for answer in answers
            for poller in answer.pollers
        ]
        return polling_problem(self.identity, pollers, datetime.now(UTC))


class _HealthServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, health: WorkerHealth, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(("127.0.0.1", port), _HealthHandler)
        self.health = health
        self.loop = loop


class _HealthHandler(BaseHTTPRequestHandler):
    server: _HealthServer

    def do_GET(self) -> None:
        if self.path != "/healthz":
            self.send_error(404)
            return
        # Through the worker's event loop: an answer proves the loop still turns.
        asked = asyncio.run_coroutine_threadsafe(self.server.health.problem(), self.server.loop)
        try:
            problem = asked.result(timeout=_LOOP_TIMEOUT)
        except TimeoutError:
            asked.cancel()
            problem = f"the worker's event loop did not answer within {_LOOP_TIMEOUT:g}s"
        health = self.server.health
        answer = {"status": "ok" if problem is None else "unavailable", "task_queue": health.task_queue}
        answer |= {"identity": health.identity} | ({"problem": problem} if problem else {})
        body = json.dumps(answer).encode()
        self.send_response(200 if problem is None else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the healthcheck calls every 15 s; an unhealthy answer says why itself."""


@asynccontextmanager
async def serve_health(worker: Worker, port: int | None) -> AsyncIterator[None]:
    """Answers `GET /healthz` on 127.0.0.1:`port` while inside; does nothing when `port` is None."""
    if port is None:
        yield
        return
    server = _HealthServer(port, WorkerHealth(worker), asyncio.get_running_loop())
    thread = threading.Thread(target=server.serve_forever, name="worker-health", daemon=True)
    thread.start()
    try:
        yield
    finally:
        await asyncio.to_thread(server.shutdown)
        server.server_close()
