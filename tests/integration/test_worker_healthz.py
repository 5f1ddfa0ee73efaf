"""The worker's health check (`GET /healthz`, what compose's healthcheck calls): ok only while it polls."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from infra.worker_health import serve_health
from tests.conftest import free_port
from tests.waiting import eventually
from worker import delivery_worker


def _get(url: str) -> tuple[int, dict[str, Any]]:
    """What compose's healthcheck does (urllib), from another thread."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


async def test_the_worker_is_healthy_only_while_it_polls_its_task_queue(client, settings):
    own = settings.model_copy(update={"task_queue": settings.task_queue + "-healthz"})
    port = free_port()
    async with (
        delivery_worker(client, own) as worker,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
        serve_health(worker, port),
    ):
        before = await http.get("/healthz")
        async with worker:
            polling = await eventually(
                lambda: http.get("/healthz"), lambda answer: answer.status_code == 200, what="a healthy worker"
            )
            with ThreadPoolExecutor(1) as thread:
                asked = thread.submit(_get, f"http://127.0.0.1:{port}/healthz")
                # Blocks the event loop until the answer comes, as a stuck worker's loop would.
                stuck_code, stuck = asked.result(timeout=30)
        after = await http.get("/healthz")
        elsewhere = await http.get("/metrics")

    assert before.status_code == 503
    assert before.json()["problem"] == "the worker is not running"
    assert polling.json() == {"status": "ok", "task_queue": own.task_queue, "identity": client.identity}
    assert stuck_code == 503
    assert stuck["problem"] == "the worker's event loop did not answer within 3s"
    assert after.status_code == 503 and after.json()["problem"] == "the worker is not running"
    assert elsewhere.status_code == 404
