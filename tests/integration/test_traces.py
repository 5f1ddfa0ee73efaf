"""Traces: one trace from `POST /v1/events` through Temporal to each POST, and nothing secret in it.

The API and a worker run in the test process with an in-memory span exporter, against the
session's dev server and a real receiver on 127.0.0.1.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Replayer

from domain.ids import first_connection_id
from domain.records import DeliveryResult
from infra.codec import data_converter
from infra.temporal import connect
from infra.tracing import Tracing
from settings import Settings
from tests.integration.helpers import api_with, create_endpoint, delivery_outcome, post_event, tracking_event
from tests.receiver import OK, Receiver, error
from tests.waiting import eventually
from worker import WORKFLOWS, delivery_worker, workflow_runner

PASSWORD, HEADER_VALUE = "pw-Tr41-secret", "hv-Tr52-secret"
# What the trace context of a caller or of the worker would look like on the wire.
TRACE_HEADERS = ("traceparent", "tracestate", "baggage")


@dataclass
class Traced:
    api: httpx.AsyncClient
    spans: InMemorySpanExporter
    tracing: Tracing
    token: str


@asynccontextmanager
async def traced_stack(settings: Settings) -> AsyncIterator[Traced]:
    """An API and a worker of their own account and task queue, tracing into memory."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing = Tracing(provider)
    name, token = f"traces-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    own = settings.model_copy(update={"task_queue": name, "api_tokens": {name: SecretStr(token)}})
    traced_client = await connect(own, tracing=tracing)
    async with (
        delivery_worker(traced_client, own, tracing=tracing) as worker,
        worker,
        api_with(own, tracing=tracing) as api,
    ):
        api.headers["authorization"] = f"Bearer {token}"
        yield Traced(api, spans, tracing, token)


def _parent_chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The names of the span's ancestors, nearest first, as far as the chain is unbroken."""
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def _one(spans: Sequence[ReadableSpan], name: str, workflow_id: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name and (s.attributes or {}).get("temporalWorkflowID") == workflow_id]


async def test_one_trace_runs_from_the_event_post_through_the_workflow_to_each_post(
    settings: Settings, client: Client, receiver: Receiver
):
    async with traced_stack(settings) as traced:
        url = receiver.url()
        endpoint = await create_endpoint(
            traced.api,
            url,
            retry={"enabled": True, "max_retries": 3},
            auth={"username": "shop", "password": PASSWORD},
            custom_header={"key": "X-Shop-Token", "value": HEADER_VALUE},
        )
        await delivery_outcome(client, first_connection_id(endpoint["id"]))
        signing_secret = (await traced.api.post(f"/v1/endpoints/{endpoint['id']}/secret")).json()["secret"]
        receiver.script(url, error(500), OK)  # two POSTs: two activity runs
        # A caller's trace context is not continued: the trace starts at the API.
        foreign_trace = "0af7651916cd43dd8448eb211c80319c"
        traced.api.headers["traceparent"] = f"00-{foreign_trace}-b7ad6b7169203331-01"
        [delivery] = (await post_event(traced.api, tracking_event()))["deliveries"]
        record = await delivery_outcome(client, delivery["id"])
        assert (record.result, record.retry) == (DeliveryResult.SUCCESS, 1)

        def server_spans() -> list[ReadableSpan]:
            return [s for s in traced.spans.get_finished_spans() if s.name == "POST /v1/events"]

        async def ingest_spans() -> list[ReadableSpan]:
            return server_spans()

        # The server span ends just after the 202 went out.
        [ingest] = await eventually(ingest_spans, lambda found: len(found) == 1, what="the POST /v1/events span")
        assert ingest.kind == SpanKind.SERVER and ingest.parent is None
        assert ingest.context is not None
        trace_id = ingest.context.trace_id
        assert trace_id != int(foreign_trace, 16)
        in_trace = [s for s in traced.spans.get_finished_spans() if s.context and s.context.trace_id == trace_id]
        by_id = {s.context.span_id: s for s in in_trace if s.context}

        [start] = _one(in_trace, "StartWorkflow:DeliveryWorkflow", delivery["id"])
        [run] = _one(in_trace, "RunWorkflow:DeliveryWorkflow", delivery["id"])
        activity_runs = _one(in_trace, "RunActivity:deliver_webhook", delivery["id"])
        posts = [s for s in in_trace if s.kind == SpanKind.CLIENT and s.name == "POST"]
        assert len(activity_runs) == 2 and len(posts) == 2
        assert start.kind == SpanKind.CLIENT
        assert _parent_chain(start, by_id)[-1:] == ["POST /v1/events"]
        assert _parent_chain(run, by_id) == ["StartWorkflow:DeliveryWorkflow", "POST /v1/events"]
        for activity_run in activity_runs:
            assert _parent_chain(activity_run, by_id) == [
                "StartActivity:deliver_webhook",
                "StartWorkflow:DeliveryWorkflow",
                "POST /v1/events",
            ]
        assert sorted(p.parent.span_id for p in posts if p.parent) == sorted(
            a.context.span_id for a in activity_runs if a.context
        )
        in_order = sorted(posts, key=lambda p: p.start_time or 0)
        assert [(p.attributes or {}).get("http.status_code") for p in in_order] == [500, 200]
        assert {(p.attributes or {}).get("http.url") for p in posts} == {url}

        # The receiver is told nothing of our traces.
        received = receiver.requests(url)[-2:]
        assert [sorted(set(TRACE_HEADERS) & set(r.headers)) for r in received] == [[], []]
        assert received[-1].headers["x-shop-token"] == HEADER_VALUE  # the secrets were really sent

        exported = "\n".join(s.to_json() for s in traced.spans.get_finished_spans())
        basic = base64.b64encode(f"shop:{PASSWORD}".encode()).decode()
        signature = received[-1].headers["webhook-signature"]
        for secret in (PASSWORD, HEADER_VALUE, basic, traced.token, signing_secret, signature):
            assert secret not in exported
        assert "http.request.header" not in exported


async def test_a_traced_delivery_replays_with_and_without_tracing_and_adds_no_span_on_replay(
    settings: Settings, client: Client, receiver: Receiver
):
    async with traced_stack(settings) as traced:
        endpoint = await create_endpoint(traced.api, receiver.url())
        delivery_id = first_connection_id(endpoint["id"])
        await delivery_outcome(client, delivery_id)
        history = await client.get_workflow_handle(delivery_id).fetch_history()
        spans_before = len(traced.spans.get_finished_spans())

        converter = data_converter(settings.codec())
        for interceptors in ([], traced.tracing.temporal_interceptors()):
            replayer = Replayer(
                workflows=WORKFLOWS,
                data_converter=converter,
                workflow_runner=workflow_runner(),
                interceptors=interceptors,
            )
            await replayer.replay_workflow(history)

        assert len(traced.spans.get_finished_spans()) == spans_before
