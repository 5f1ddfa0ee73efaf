"""What an operator reads (issue 17): the worker's and the API's JSON log lines, each with an
ISO 8601 `time`, a failed POST and an endpoint's auto-disable at WARNING, and the API's metrics
giving its static files a route of their own.

The service as `make run` starts it: `python worker.py` and uvicorn as processes (JSON logs,
the default), their output read from files (tests/faults/stack.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from domain.ids import first_connection_id
from tests.faults.stack import ServiceProcess, api_process, create_endpoint, temporal_stack, worker_process
from tests.integration.helpers import delivery_outcome, tracking_event
from tests.receiver import OK, Receiver, error
from tests.waiting import eventually

GONE = "HTTP response code is 410 (Gone), it must be 200"


def _json_lines(process: ServiceProcess) -> list[dict[str, Any]]:
    """Every JSON line of the process's output (the Temporal core's own lines are not ours)."""
    return [json.loads(line) for line in process.log().splitlines() if line.startswith("{")]


def _api_requests(scrape: str) -> dict[tuple[str, str, str], float]:
    """webhooks_api_requests_total by (method, route, status)."""
    [family] = [f for f in text_string_to_metric_families(scrape) if f.name == "webhooks_api_requests"]
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in family.samples
        if s.name.endswith("_total")
    }


async def test_failures_and_disables_log_at_warning_with_iso_times_and_static_files_have_a_route(
    tmp_path, receiver: Receiver
):
    started = datetime.now(UTC)
    url = receiver.url(OK, error(410))  # the first connection succeeds; the event is answered 410 Gone
    async with (
        temporal_stack(tmp_path) as stack,
        worker_process(stack) as worker,
        api_process(stack) as api_proc,
        httpx.AsyncClient(base_url=api_proc.url, timeout=30) as api,
    ):
        client = await stack.client()
        endpoint_id = await create_endpoint(api, url)
        await delivery_outcome(client, first_connection_id(endpoint_id))
        [delivery] = (await api.post("/v1/events", json=tracking_event())).json()["deliveries"]
        assert (await delivery_outcome(client, delivery["id"])).error == GONE
        await eventually(
            lambda: api.get(f"/v1/endpoints/{endpoint_id}"), lambda r: r.json()["disabled"], what="the auto-disable"
        )
        disabled = f"endpoint {endpoint_id} of account default disabled"

        async def worker_log() -> list[dict[str, Any]]:
            return _json_lines(worker)

        await eventually(worker_log, lambda lines: any(disabled in line["message"] for line in lines), what=disabled)
        for path in ("/ui/", "/ui/app.js", "/docs/", "/ui/no-such-file.js", "/no-such-page"):
            await api.get(path)
        requests = _api_requests((await api.get("/metrics")).text)
        worker_lines, api_lines = _json_lines(worker), _json_lines(api_proc)
    finished = datetime.now(UTC)

    levels = {line["message"]: line["level"] for line in worker_lines}
    assert levels[f"POST {first_connection_id(endpoint_id)} attempt 1: delivered"] == "INFO"
    assert levels[f"POST {delivery['id']} attempt 1: {GONE}"] == "WARNING"
    [disable] = [line for line in worker_lines if disabled in line["message"]]
    assert disable["level"] == "WARNING" and "410 Gone" in disable["message"]

    assert worker_lines and api_lines
    for line in worker_lines + api_lines:
        time = datetime.fromisoformat(line["time"])  # ISO 8601, with its offset
        assert time.tzinfo is not None and started <= time <= finished, line

    assert requests[("GET", "/ui/{path}", "200")] == 2
    assert requests[("GET", "/docs/{path}", "200")] == 1
    assert requests[("GET", "/ui/{path}", "404")] == 1
    assert requests[("GET", "unmatched", "404")] == 1  # what no route serves is still told apart
