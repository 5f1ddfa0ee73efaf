"""The one Temporal client each process opens."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from runtime.codec import data_converter
from settings import Settings


async def connect(settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None) -> Client:
    """A client with the service's converter (pydantic models, encrypted); `lazy` ones
    connect on first use (the API starts, and answers 503 on /healthz, while
    Temporal is still down)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.codec()),
        lazy=lazy,
        runtime=runtime,
    )


def metrics_runtime(port: int) -> Runtime:
    """A Temporal runtime that serves its metrics (and ours, made through its meter) to Prometheus."""
    prometheus = PrometheusConfig(bind_address=f"0.0.0.0:{port}", counters_total_suffix=True, durations_as_seconds=True)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))
