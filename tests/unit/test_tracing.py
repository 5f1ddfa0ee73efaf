"""When tracing is on, what it refuses, what it propagates, and that it changes no workflow's commands."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext, TraceFlags, get_current_span, set_span_in_context
from opentelemetry.trace.span import NonRecordingSpan
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from infra.codec import AesGcmCodec, data_converter, parse_key
from infra.tracing import NoPropagation, Tracing, tracing_from_environment
from tests.histories.record import TEST_KEY
from worker import WORKFLOWS, workflow_runner

COLLECTOR = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
        {"OTEL_SERVICE_NAME": "webhooks", "OTEL_TRACES_EXPORTER": "otlp"},  # no endpoint: no collector to send to
        COLLECTOR | {"OTEL_SDK_DISABLED": "true"},
    ],
)
def test_tracing_is_off_without_an_otlp_endpoint(environ):
    assert tracing_from_environment(f"svc-{uuid.uuid4().hex[:6]}", environ) is None


@pytest.mark.parametrize("endpoint", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
def test_an_otlp_endpoint_turns_tracing_on_under_the_service_name(endpoint, monkeypatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    service = f"svc-{uuid.uuid4().hex[:6]}"

    tracing = tracing_from_environment(service, {endpoint: "http://127.0.0.1:4318"})

    assert tracing is not None
    assert tracing.provider.resource.attributes["service.name"] == service
    assert tracing_from_environment(service, {endpoint: "http://127.0.0.1:4318"}) is tracing  # one per process


def test_otel_service_name_names_the_service_when_set(monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "webhooks-eu-api")

    tracing = tracing_from_environment(f"svc-{uuid.uuid4().hex[:6]}", COLLECTOR)

    assert tracing is not None and tracing.provider.resource.attributes["service.name"] == "webhooks-eu-api"


@pytest.mark.parametrize(
    "variable",
    [
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
    ],
)
def test_recording_request_headers_is_refused_without_echoing_the_setting(variable):
    with pytest.raises(RuntimeError, match=f"{variable} is set: request headers carry credentials") as refused:
        tracing_from_environment("webhooks-api", COLLECTOR | {variable: "authorization,x-shop-token"})

    assert "x-shop-token" not in str(refused.value)


def test_no_trace_context_is_read_from_a_carrier_nor_written_into_one():
    remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True, TraceFlags(1))
    carrier: dict[str, str] = {}

    NoPropagation().inject(carrier, set_span_in_context(NonRecordingSpan(remote)))
    extracted = NoPropagation().extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})

    assert carrier == {}
    assert extracted == Context() and not get_current_span(extracted).get_span_context().is_valid


HISTORIES = {
    f"{path.parent.name}/{path.stem}": WorkflowHistory.from_json(path.stem, path.read_text())
    for path in sorted((Path(__file__).parents[1] / "histories").glob("*/*.json"))
}


@pytest.mark.parametrize("name", HISTORIES)
async def test_histories_recorded_without_tracing_replay_on_a_worker_that_traces(name: str):
    """A worker started with tracing on takes over deliveries begun without it: the
    interceptor adds headers, never a command. (A traced history replaying with and
    without tracing, and making no span as it does, is in tests/integration/test_traces.py.)"""
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=data_converter(AesGcmCodec(parse_key(TEST_KEY))),
        workflow_runner=workflow_runner(),
        interceptors=Tracing(TracerProvider()).temporal_interceptors(),
    )

    await replayer.replay_workflow(HISTORIES[name])
