"""The one Temporal client each process opens, and the answers of Temporal calls we treat alike."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, TypeVar

from temporalio.client import Client
from temporalio.converter import PayloadCodec
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from infra.codec import data_converter
from infra.tracing import Tracing

T = TypeVar("T")


class TemporalTarget(Protocol):
    """Where Temporal is and how what we store there is encrypted (our Settings are one)."""

    @property
    def temporal_address(self) -> str: ...

    @property
    def temporal_namespace(self) -> str: ...

    def codec(self) -> PayloadCodec: ...


async def connect(
    target: TemporalTarget, *, lazy: bool = False, runtime: Runtime | None = None, tracing: Tracing | None = None
) -> Client:
    """A client with the service's converter (pydantic models, encrypted); `lazy` ones
    connect on first use (the API starts, and answers 503 on /healthz, while
    Temporal is still down). With `tracing`, its calls and the workers built on it are traced."""
    return await Client.connect(
        target.temporal_address,
        namespace=target.temporal_namespace,
        data_converter=data_converter(target.codec()),
        interceptors=tracing.temporal_interceptors() if tracing else [],
        lazy=lazy,
        runtime=runtime,
    )


def metrics_runtime(port: int) -> Runtime:
    """A Temporal runtime that serves its metrics (and ours, made through its meter) to Prometheus."""
    prometheus = PrometheusConfig(bind_address=f"0.0.0.0:{port}", counters_total_suffix=True, durations_as_seconds=True)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


def is_not_found(err: RPCError) -> bool:
    return err.status == RPCStatusCode.NOT_FOUND


async def or_none(call: Awaitable[T]) -> T | None:
    """The call's answer, or None when the workflow it asks about does not exist."""
    try:
        return await call
    except RPCError as err:
        if is_not_found(err):
            return None
        raise
