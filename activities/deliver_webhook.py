"""`deliver_webhook`: one POST to an endpoint, classified by the seed's rule."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from domain.activity_contract import (
    DELIVER_WEBHOOK,
    DELIVERY_FAILED,
    ENDPOINT_DELETED,
    ENDPOINT_DISABLED,
    FORBIDDEN_DESTINATION,
    HEARTBEAT_EVERY_SECONDS,
    INVALID_ENDPOINT_URL,
    AttemptInput,
    AttemptProgress,
)
from domain.endpoints import DeliveryOutcome, Endpoint, HealthPolicy
from domain.outcome import classify, unreachable
from domain.records import AttemptRecord, HttpRequestRecord, HttpResponseRecord
from domain.retry import RETRY_AFTER_STATUSES, Backoff, parse_retry_after
from domain.status import status_text
from domain.validation import check_endpoint_url
from domain.wire import masked_headers, request_headers
from infra.network_guard import ForbiddenDestination

# Read at most this much of a response: enough to judge any sane JSON answer,
# bounded so a receiver cannot exhaust the worker's memory.
MAX_RESPONSE_BYTES = 1024 * 1024
# Keep this much of a response body in the delivery log.
STORED_BODY_BYTES = 16 * 1024


class EndpointSource(Protocol):
    """An account's endpoints as the activity needs them: read at send time, told of outcomes."""

    async def for_delivery(self, endpoint_id: str, seen_version: int | None = None) -> Endpoint | None: ...

    async def record_outcome(self, outcome: DeliveryOutcome) -> None: ...


# The endpoints of an account, by account name.
EndpointSources = Callable[[str], EndpointSource]


def _is_last(record: AttemptRecord, attempt: AttemptInput, final_type: str | None) -> bool:
    """Whether a failed attempt ends the delivery: its attempts are spent, or no retry could succeed
    (`final_type` names such a failure: a forbidden destination, an invalid URL)."""
    return final_type is not None or record.number >= attempt.max_attempts


def _stop(message: str, kind: str) -> ApplicationError:
    """A delivery that ends without a POST: nothing to retry."""
    return ApplicationError(message, type=kind, non_retryable=True, category=ApplicationErrorCategory.BENIGN)


class _Heartbeats:
    """Heartbeats the delivery's progress for as long as the attempt runs.

    They prove the worker alive through every wait (the registry read, a slow
    POST), so a live attempt is never timed out and repeated, and a dead one
    is noticed within the heartbeat timeout. An attempt that ends sooner than
    the first beat sends none: its result or failure says it all.
    """

    def __init__(self, progress: AttemptProgress) -> None:
        self._progress = progress
        self._task: asyncio.Task[None] | None = None

    def record(self, progress: AttemptProgress) -> None:
        """A POST was made. A failed one is sent at once: the next attempt reads
        the count of POSTs from it. A success ends the attempt with its record."""
        self._progress = progress
        if progress.last is None or not progress.last.succeeded:
            activity.heartbeat(progress.model_dump(mode="json"))

    def send(self) -> None:
        activity.heartbeat(self._progress.model_dump(mode="json"))

    async def __aenter__(self) -> _Heartbeats:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task:
            self._task.cancel()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)
            self.send()


class DeliveryActivities:
    """Holds what every attempt shares: the worker's HTTP client and Temporal client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoints: EndpointSources,
        backoff: Backoff,
        http_timeout: float,
        health: HealthPolicy,
    ) -> None:
        self._http = http
        self._endpoints = endpoints
        self._backoff = backoff
        self._http_timeout = http_timeout
        self._health = health

    @activity.defn(name=DELIVER_WEBHOOK)
    async def deliver_webhook(self, attempt: AttemptInput) -> AttemptRecord:
        """POST the body; return the attempt on success, raise with it on failure.

        The attempts made so far travel in the heartbeat details, so an activity run
        lost with its worker is run again without spending the delivery's retries,
        and an attempt already recorded is not POSTed again.
        """
        progress = AttemptProgress.from_details(activity.info().heartbeat_details)
        if progress.last is not None and (progress.last.succeeded or progress.attempts >= attempt.max_attempts):
            return self._conclude(progress.last, attempt, retry_after=None, final_type=None)
        async with _Heartbeats(progress) as heartbeats:
            registry = self._endpoints(attempt.account)
            # The activity's first run may read the registry as ingest saw it; a retry reads it now.
            seen = attempt.registry_version if activity.info().attempt == 1 else None
            endpoint = await registry.for_delivery(attempt.endpoint_id, seen)
            if endpoint is None:
                raise _stop(f"Endpoint {attempt.endpoint_id} was deleted: delivery stopped", ENDPOINT_DELETED)
            if endpoint.disabled and attempt.skip_if_disabled:
                raise _stop(f"Endpoint {attempt.endpoint_id} is disabled: delivery skipped", ENDPOINT_DISABLED)
            record, retry_after, final_type = await self._post(endpoint, attempt, progress.attempts + 1)
            heartbeats.record(AttemptProgress(attempts=record.number, last=record))
            ends = record.succeeded or _is_last(record, attempt, final_type)
            # Health counts deliveries, not attempts: report ends, and successes only when they end a run.
            if ends and self._health.failures > 0 and (not record.succeeded or endpoint.health.failed_deliveries):
                outcome = DeliveryOutcome(
                    endpoint_id=endpoint.id,
                    delivery_id=attempt.delivery_id,
                    succeeded=record.succeeded,
                    at=record.started_at,
                    policy=self._health,
                )
                heartbeats.send()  # the POST is recorded before a wait on the registry
                await registry.record_outcome(outcome)
        return self._conclude(record, attempt, retry_after, final_type)

    def _conclude(
        self, record: AttemptRecord, attempt: AttemptInput, retry_after: float | None, final_type: str | None
    ) -> AttemptRecord:
        if record.succeeded:
            return record
        assert record.error is not None
        raise ApplicationError(
            record.error,
            record.model_dump(mode="json"),
            type=final_type or DELIVERY_FAILED,
            non_retryable=_is_last(record, attempt, final_type),
            next_retry_delay=timedelta(seconds=self._backoff.delay(record.number, retry_after)),
            # An endpoint answering badly is business as usual, not a worker error.
            category=ApplicationErrorCategory.BENIGN,
        )

    async def _post(
        self, endpoint: Endpoint, attempt: AttemptInput, number: int
    ) -> tuple[AttemptRecord, float | None, str | None]:
        """The attempt's record, the receiver's Retry-After, and the type of a failure no retry can mend."""
        started_at = datetime.now(UTC)
        headers = request_headers(endpoint, attempt.message_id, attempt.body, started_at)
        request = HttpRequestRecord(
            method="POST", url=endpoint.url, headers=masked_headers(endpoint, headers), body=attempt.body
        )
        clock = time.monotonic()
        response: HttpResponseRecord | None = None
        retry_after: float | None = None
        final_type: str | None = None
        try:
            _require_valid_url(endpoint.url)
            async with self._http.stream("POST", endpoint.url, content=attempt.body.encode(), headers=headers) as resp:
                body, complete = await _read_capped(resp)
            response = HttpResponseRecord(
                status_code=resp.status_code,
                status_text=status_text(resp.status_code),
                headers=_flat_headers(resp.headers),
                body=body[:STORED_BODY_BYTES].decode("utf-8", errors="replace"),
                body_truncated=len(body) > STORED_BODY_BYTES or not complete,
            )
            if complete:
                error = classify(resp.status_code, resp.headers.get("content-type"), body)
            else:
                error = f"HTTP response body is larger than {MAX_RESPONSE_BYTES} bytes"
            if error and resp.status_code in RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(resp.headers.get("retry-after"), datetime.now(UTC))
        except httpx.HTTPError as exc:
            error = unreachable(_describe(exc, self._http_timeout))
        except ForbiddenDestination as exc:
            error, final_type = f"Endpoint not allowed: {exc}", FORBIDDEN_DESTINATION
        except InvalidUrl as exc:
            error, final_type = f"Endpoint URL is invalid: it {exc}", INVALID_ENDPOINT_URL
        except (UnicodeError, httpx.InvalidURL):
            # What httpx's URL parser or a resolver refuses beyond our rules, should they ever be stricter.
            error, final_type = "Endpoint URL is invalid: its host is not a valid DNS name", INVALID_ENDPOINT_URL
        elapsed_ms = round((time.monotonic() - clock) * 1000)
        record = AttemptRecord(
            number=number,
            started_at=started_at,
            time_spent_ms=elapsed_ms,
            request=request,
            response=response,
            error=error,
        )
        activity.logger.info("POST %s attempt %d: %s", attempt.delivery_id, number, error or "delivered")
        _measure(response, error, elapsed_ms)
        return record, retry_after, final_type


class InvalidUrl(Exception):
    """The endpoint's URL breaks a rule of today's (it was stored before the rule)."""


def _require_valid_url(url: str) -> None:
    """Refuses, before any resolver does with its raw error, a host that none would take."""
    try:
        check_endpoint_url(url)
    except ValueError as exc:
        raise InvalidUrl(str(exc)) from None


def _measure(response: HttpResponseRecord | None, error: str | None, elapsed_ms: int) -> None:
    """Attempts by outcome and their HTTP latency, on the worker's Prometheus endpoint."""
    meter = activity.metric_meter()
    outcome = "delivered" if error is None else ("failed" if response is not None else "unreachable")
    meter.create_counter("webhook_attempts", "POSTs made to endpoints").add(1, {"outcome": outcome})
    latency = meter.create_histogram_float("webhook_http_latency", "Time one POST took", "s")
    latency.record(elapsed_ms / 1000, {"outcome": outcome})


async def _read_capped(resp: httpx.Response) -> tuple[bytes, bool]:
    """The body, up to MAX_RESPONSE_BYTES; whether it was read to the end."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return b"".join(chunks)[:MAX_RESPONSE_BYTES], False
    return b"".join(chunks), True


def _flat_headers(headers: httpx.Headers) -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in headers.multi_items():
        flat[name] = f"{flat[name]}, {value}" if name in flat else value
    return flat


def _describe(exc: httpx.HTTPError, timeout: float) -> str:
    """Why no response came, in words: the cause an operator can act on."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connection not established within {timeout:g}s"
    if isinstance(exc, httpx.TimeoutException):
        return f"no response within {timeout:g}s"
    root = _root_cause(exc)
    if isinstance(exc, httpx.ConnectError):
        if isinstance(root, ssl.SSLError):
            return f"TLS handshake failed ({root.reason or root})"
        if isinstance(root, socket.gaierror):
            return f"DNS lookup failed ({root.strerror})"
        if isinstance(root, OSError) and root.errno:
            return f"could not connect ({os.strerror(root.errno)})"
        return f"could not connect ({exc or root})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection closed before a complete response ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _root_cause(exc: BaseException) -> BaseException:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
        if isinstance(seen, BaseExceptionGroup) and seen.exceptions:
            seen = seen.exceptions[0]
    return seen
