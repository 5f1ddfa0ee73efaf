"""The one Temporal client each process opens, and the answers of Temporal calls we treat alike."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.converter import PayloadCodec
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from infra.codec import data_converter
from infra.tracing import Tracing

T = TypeVar("T")
W = TypeVar("W")
A = TypeVar("A")


class TemporalTarget(Protocol):
    """Where Temporal is and how what we store there is encrypted (our Settings are one)."""

    @property
    def temporal_address(self) -> str: ...

    @property
    def temporal_namespace(self) -> str: ...

    def codec(self) -> PayloadCodec: ...


async def connect(
    target: TemporalTarget,
    *,
    lazy: bool = False,
    runtime: Runtime | None = None,
    tracing: Tracing | None = None,
    identity: str | None = None,
) -> Client:
    """A client with the service's converter (pydantic models, encrypted); `lazy` ones
    connect on first use (the API starts, and answers 503 on /healthz, while
    Temporal is still down). With `tracing`, its calls and the workers built on it are traced.
    `identity` names it in the histories of what it runs (Temporal's default: pid@host)."""
    return await Client.connect(
        target.temporal_address,
        namespace=target.temporal_namespace,
        data_converter=data_converter(target.codec()),
        interceptors=tracing.temporal_interceptors() if tracing else [],
        lazy=lazy,
        runtime=runtime,
        identity=identity,
    )


def metrics_runtime(host: str, port: int) -> Runtime:
    """A Temporal runtime that serves its metrics (and ours, made through its meter) to Prometheus
    on host:port (an IPv6 host without brackets is given them)."""
    address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    prometheus = PrometheusConfig(bind_address=address, counters_total_suffix=True, durations_as_seconds=True)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


class NamespaceRetention:
    """How long the namespace keeps closed workflows, so the delivery log's depth: read from the
    server (an operator may change it) and kept for a few minutes, not asked on every request."""

    def __init__(self, keep_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._keep = keep_seconds
        self._clock = clock
        self._read: tuple[float, timedelta | None] | None = None

    async def of(self, client: Client) -> timedelta | None:
        """The retention; None when the server sets none."""
        if self._read is None or self._clock() - self._read[0] > self._keep:
            answer = await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=client.namespace)
            )
            ttl = answer.config.workflow_execution_retention_ttl
            retention = ttl.ToTimedelta() if answer.config.HasField("workflow_execution_retention_ttl") else None
            self._read = (self._clock(), retention or None)
        return self._read[1]


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


# How long an update the server aborted or refused is sent again before its error is the answer.
UPDATE_RESEND_SECONDS = 10.0


def is_update_aborted(err: RPCError) -> bool:
    """The server dropped an update before the workflow accepted it: it cleared the workflow's
    update registry (a task it lost under load, a reload from the database). Temporal answers
    UNAVAILABLE and documents the update as safe to send again."""
    return err.status == RPCStatusCode.UNAVAILABLE and "update was aborted" in err.message.lower()


def is_update_dropped_with_its_task(err: RPCError) -> bool:
    """The workflow task that carried the update failed before the workflow accepted it (its
    completion lost under load; seen once in CI on a PATCH): since Temporal 1.27 the server
    answers FAILED_PRECONDITION at once rather than retrying it itself. Nothing of the update
    ran, so it is sent again; a task that keeps failing exhausts the resend budget."""
    return err.status == RPCStatusCode.FAILED_PRECONDITION and "unexpected workflow task failure" in err.message.lower()


def is_update_refused_in_flight(err: RPCError) -> bool:
    """The workflow had as many updates in flight as Temporal allows (10): this one was refused
    before it was admitted, so nothing of it ran. Other processes' updates can fill the limit
    whatever this process's UpdateSlots allow."""
    return err.status == RPCStatusCode.RESOURCE_EXHAUSTED and "in-flight updates" in err.message.lower()


async def update_kept(send: Callable[..., Awaitable[T]], *, budget_seconds: float = UPDATE_RESEND_SECONDS) -> T:
    """`send(id=…)`'s answer, sending it again while the server aborts it, drops it with a failed
    workflow task, or refuses it for the updates already in flight. Every send carries the same
    update id, so the workflow runs the update once even if an abort came after all."""
    update_id = str(uuid.uuid4())
    deadline = time.monotonic() + budget_seconds
    pause = 0.1
    while True:
        try:
            return await send(id=update_id)
        except RPCError as err:
            resend = is_update_aborted(err) or is_update_dropped_with_its_task(err) or is_update_refused_in_flight(err)
            if not resend or time.monotonic() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


async def update_with_start(
    client: Client,
    update: UpdateMethodMultiParam[[W, A], T],
    arg: A,
    *,
    start: WithStartWorkflowOperation[W, Any],
    id: str | None = None,
) -> T:
    """An update-with-start's answer. When it fails, the SDK hands the failure to `start`'s
    workflow handle too, which no caller here reads: asyncio would then log it, traceback and
    all, as "Future exception was never retrieved", for every busy or aborted answer."""
    try:
        return await client.execute_update_with_start_workflow(update, arg, id=id, start_workflow_operation=start)
    except BaseException as err:
        handle = start._workflow_handle  # no public read that does not wait
        if handle.done() and not handle.cancelled():
            handle.exception()
        task = asyncio.current_task()
        if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError) and task and task.cancelling():
            # The SDK answers a cancel of its caller with this error: the caller (an activity
            # cancelled, a timeout around the call) must see its cancellation for what it is.
            raise asyncio.CancelledError from err
        raise


# Updates one process sends one workflow at once; Temporal holds at most 10 in flight per workflow.
UPDATES_AT_ONCE = 8
# How long an update waits for one of those before it is refused as busy.
UPDATE_SLOT_WAIT_SECONDS = 10.0


class UpdatesBusy(Exception):
    """No update slot came free in time: the workflow has as many updates in flight as this
    process sends it at once."""


class UpdateSlots:
    """Temporal refuses a workflow's 11th update in flight, and on a busy server we saw the
    refusals come with the updates it held but had not yet given the workflow dropped, each
    answering "aborted": a burst of creates past the limit made more refusals than it had
    creates. So a process sends each workflow (an account's registry, an endpoint's flow
    schedule) at most UPDATES_AT_ONCE at a time; the rest wait here, in order. One per process
    (with several processes, each has its own: update_kept sends a refused update again)."""

    def __init__(self, at_once: int = UPDATES_AT_ONCE, wait_seconds: float = UPDATE_SLOT_WAIT_SECONDS) -> None:
        self._at_once = at_once
        self._wait = wait_seconds
        # Per workflow, while any update holds or awaits a slot: a worker meets many schedules.
        self._slots: dict[str, _Slots] = {}

    @asynccontextmanager
    async def held(self, workflow_id: str) -> AsyncIterator[None]:
        slots = self._slots.setdefault(workflow_id, _Slots(asyncio.Semaphore(self._at_once)))
        slots.users += 1
        try:
            try:
                async with asyncio.timeout(self._wait):
                    await slots.semaphore.acquire()
            except TimeoutError:
                raise UpdatesBusy() from None
            try:
                yield
            finally:
                slots.semaphore.release()
        finally:
            slots.users -= 1
            if not slots.users:
                del self._slots[workflow_id]

    def workflows(self) -> int:
        """Workflows with an update holding or awaiting a slot."""
        return len(self._slots)


@dataclasses.dataclass
class _Slots:
    semaphore: asyncio.Semaphore
    users: int = 0  # updates holding or awaiting one of them
