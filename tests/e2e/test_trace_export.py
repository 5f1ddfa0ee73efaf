"""Traces as deployed: `python worker.py` and the API under uvicorn, as real processes.

With OTEL_EXPORTER_OTLP_ENDPOINT set, both export by OTLP (to a receiver on 127.0.0.1
standing in for a collector) and their spans join into one trace. Without it, neither
process so much as imports OpenTelemetry's SDK, an instrumentation or Temporal's
tracing interceptor while it delivers a webhook: Python's own import log
(PYTHONPROFILEIMPORTTIME) shows every module a process loaded.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.faults.stack import (
    ServiceProcess,
    Stack,
    TemporalServer,
    api_process,
    create_endpoint,
    outcome,
    worker_process,
)
from tests.integration.helpers import tracking_event
from tests.receiver import OK, Receiver

# What tracing would load: OpenTelemetry's SDK, exporters and instrumentations, Temporal's interceptor.
TRACING_MODULES = (
    "opentelemetry.sdk",
    "opentelemetry.exporter",
    "opentelemetry.instrumentation",
    "temporalio.contrib.opentelemetry",
)


@dataclass
class Delivered:
    """What one event posted to the processes left: the processes, the receiver's URL, the delivery."""

    api: ServiceProcess
    worker: ServiceProcess
    url: str
    delivery_id: str


@pytest.fixture
def stack(tmp_path: Path, temporal_address: str) -> Stack:
    """Service processes on the session's dev server, on a task queue and an account of their own."""
    port = int(temporal_address.rsplit(":", 1)[1])
    server = TemporalServer(tmp_path / "unused.db", tmp_path / "unused.log", port=port)  # started by the session
    return Stack(tmp_path, server, task_queue=f"traces-{uuid.uuid4().hex[:8]}")


@asynccontextmanager
async def one_delivery(stack: Stack, receiver: Receiver, **env: str) -> AsyncIterator[Delivered]:
    """Start a worker and an API with `env`, register an endpoint, post an event, wait for its
    delivery; yield once both processes have stopped as on SIGTERM (flushing what they buffer)."""
    account, token = f"traces-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex  # its own registry
    stack.overrides |= {"WEBHOOKS_API_TOKENS": json.dumps({account: token}), "WEBHOOKS_LOG_FORMAT": "text", **env}
    url = receiver.url()
    async with AsyncExitStack() as running:
        worker = await running.enter_async_context(worker_process(stack))
        api = await running.enter_async_context(api_process(stack))
        auth = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=api.url, headers=auth, timeout=30) as http:
            await create_endpoint(http, url)
            accepted = await http.post("/v1/events", json=tracking_event())
            assert accepted.status_code == 202, accepted.text
            [delivery] = accepted.json()["deliveries"]
        await outcome(await stack.client(), delivery["id"], 30)
        for process in (api, worker):
            process.process.send_signal(signal.SIGTERM)
            # uvicorn, its shutdown done, raises SIGTERM again to exit with it.
            assert await process.process.wait() in (0, -signal.SIGTERM), process.log_tail()
    yield Delivered(api, worker, url, delivery["id"])


def _imported(process: ServiceProcess) -> list[str]:
    """Every module the process imported, from its PYTHONPROFILEIMPORTTIME lines."""
    return [line.rsplit("|", 1)[1].strip() for line in process.log().splitlines() if line.startswith("import time:")]


async def test_without_an_otlp_endpoint_neither_process_loads_any_tracing_code(stack: Stack, receiver: Receiver):
    quiet = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
        "PYTHONPROFILEIMPORTTIME": "1",
    }
    async with one_delivery(stack, receiver, **quiet) as delivered:
        pass

    for process in (delivered.api, delivered.worker):
        imported = _imported(process)
        assert "infra.tracing" in imported  # the import log is complete: it has the module that would trace
        assert [m for m in imported if m.startswith(TRACING_MODULES)] == [], process.name
    assert [r.headers.get("traceparent") for r in receiver.requests(delivered.url)] == [None, None]


async def test_the_api_and_the_worker_export_one_trace_by_otlp(stack: Stack, receiver: Receiver):
    collector = f"/otlp-{uuid.uuid4().hex[:8]}"  # OTLP/HTTP posts to <endpoint>/v1/traces
    receiver.script(collector + "/v1/traces", OK)
    async with one_delivery(stack, receiver, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.base_url + collector) as delivered:
        pass

    spans: dict[bytes, tuple[str, Span]] = {}  # span id -> (service.name, span)
    for export in receiver.requests(collector + "/v1/traces"):
        assert export.headers["content-type"] == "application/x-protobuf"
        for resource_spans in ExportTraceServiceRequest.FromString(export.body).resource_spans:
            [service] = [a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"]
            for scoped in resource_spans.scope_spans:
                spans |= {span.span_id: (service, span) for span in scoped.spans}

    def chain(span: Span) -> list[tuple[str, str]]:
        """(service, name) of the span's ancestors, nearest first, while the chain holds."""
        found = []
        while span.parent_span_id in spans:
            service, span = spans[span.parent_span_id]
            found.append((service, span.name))
        return found

    def attribute(span: Span, key: str) -> str | None:
        return next((a.value.string_value for a in span.attributes if a.key == key), None)

    def of_delivery(name: str) -> list[Span]:
        return [
            span
            for _, span in spans.values()
            if span.name == name and attribute(span, "temporalWorkflowID") == delivered.delivery_id
        ]

    [run], [activity_run] = of_delivery("RunWorkflow:DeliveryWorkflow"), of_delivery("RunActivity:deliver_webhook")
    [post] = [span for _, span in spans.values() if span.parent_span_id == activity_run.span_id]
    assert (post.name, attribute(post, "http.url")) == ("POST", delivered.url)
    assert chain(post) == [
        ("webhooks-worker", "RunActivity:deliver_webhook"),
        ("webhooks-worker", "StartActivity:deliver_webhook"),
        ("webhooks-api", "StartWorkflow:DeliveryWorkflow"),
        ("webhooks-api", "POST /v1/events"),
    ]
    assert chain(run) == [("webhooks-api", "StartWorkflow:DeliveryWorkflow"), ("webhooks-api", "POST /v1/events")]
    assert post.trace_id == run.trace_id
    assert [r.headers.get("traceparent") for r in receiver.requests(delivered.url)] == [None, None]
