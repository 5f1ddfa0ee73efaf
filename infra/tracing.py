"""Traces: one OpenTelemetry trace from `POST /v1/events` through Temporal to each POST to a receiver.

Off unless the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
is set. Off, none of OpenTelemetry's SDK, instrumentations or Temporal's tracing interceptor is
even imported: a process pays nothing. On, each process has a `Tracing` whose provider exports
by OTLP over HTTP (every other `OTEL_EXPORTER_OTLP_*` variable is the exporter's own), and it is
handed explicitly to the three places that make spans:

- the FastAPI app (the API's server spans),
- the Temporal client, through `temporalio.contrib.opentelemetry.TracingInterceptor`: client
  calls (StartWorkflow, queries, updates) and, on a worker built from that client, the
  workflows' and activities' spans, their context travelling in Temporal headers,
- the worker's httpx clients (a client span for each POST to a receiver).

No global tracer provider is set, so nothing else emits spans (FastAPI's own telemetry, which
runs only with a global provider, stays off: the instrumentation makes the server spans).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

# OpenTelemetry's API alone (FastAPI imports it anyway); its SDK is imported only when tracing is on.
from opentelemetry.context import Context
from opentelemetry.propagate import set_global_textmap
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.contrib.opentelemetry import TracingInterceptor

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

# The instrumentations record the request headers these name: the API's carry merchants'
# bearer tokens, the worker's carry endpoints' Basic auth, custom header and signature.
REQUEST_HEADER_CAPTURE_VARIABLES = (
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
)


class Tracing:
    """How one process traces: its tracer provider, handed to each instrumentation."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        # Trace context crosses none of the service's HTTP edges. Inside, it travels in Temporal
        # headers (the interceptor has its own W3C propagator). The httpx instrumentation would
        # send `traceparent` to merchants' receivers, which neither Svix nor Stripe does: it
        # tells a third party our trace ids. The API's callers are tenants: they do not get to
        # choose our trace ids or sampling. Both instrumentations use the global propagator.
        set_global_textmap(NoPropagation())

    def temporal_interceptors(self) -> list[TracingInterceptor]:
        """For `Client.connect`: the client's calls and every worker built on it are traced."""
        from temporalio.contrib.opentelemetry import TracingInterceptor

        return [TracingInterceptor(self.provider.get_tracer("temporalio.contrib.opentelemetry"))]

    def instrument_api(self, app: FastAPI) -> None:
        """A server span for each request; none for the ASGI messages inside it."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.metrics import NoOpMeterProvider

        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=self.provider, meter_provider=NoOpMeterProvider(), exclude_spans=["receive", "send"]
        )

    def instrument_http(self, client: httpx.AsyncClient) -> None:
        """A client span for each request the client sends (method, URL without credentials, status)."""
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.metrics import NoOpMeterProvider

        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=self.provider, meter_provider=NoOpMeterProvider()
        )

    def flush(self) -> None:
        """Export what is still buffered. Call it as the process stops: neither process leaves
        through atexit (uvicorn re-raises SIGTERM after its shutdown; the worker ends by os._exit)."""
        self.provider.force_flush()


class NoPropagation(TextMapPropagator):
    """Reads no trace context from a carrier and writes none into it.

    (An empty CompositePropagator, which OTEL_PROPAGATORS=none gives, extracts None,
    and the ASGI instrumentation then fails every request.)"""

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = default_getter
    ) -> Context:
        return context if context is not None else Context()

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return set()


def tracing_from_environment(service: str, environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """The process's tracing, exported by OTLP, if an OTLP endpoint is set; None otherwise."""
    if not any(environ.get(name) for name in ENDPOINT_VARIABLES) or _disabled(environ):
        return None
    for name in REQUEST_HEADER_CAPTURE_VARIABLES:
        if environ.get(name):
            raise RuntimeError(f"{name} is set: request headers carry credentials, and are never recorded in traces")
    return _exported(service)


def _disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


@cache
def _exported(service: str) -> Tracing:
    """One provider and exporter per process and service, however many apps or clients it builds."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracing(provider)
