"""One POST of a delivery: the request as it goes out, the answer judged by the seed's rule,
and the attempt's record, with every credential masked."""

from __future__ import annotations

import asyncio
import time
import traceback
from datetime import UTC, datetime
from functools import partial
from typing import NamedTuple

import httpx
from temporalio import activity

from activities.flow_control import SlotMissed
from activities.http_errors import describe, describe_cut
from activities.http_exchange import MAX_RESPONSE_BYTES, PhaseTimer, WebhookPoster
from domain.activity_contract import FORBIDDEN_DESTINATION, INVALID_ENDPOINT_HEADER, INVALID_ENDPOINT_URL, AttemptInput
from domain.endpoints import Endpoint
from domain.outcome import INVALID_HEADER_ERROR, classify, unreachable
from domain.records import AttemptRecord, HttpRequestRecord, HttpResponseRecord
from domain.retry import THROTTLE_STATUSES, parse_retry_after
from domain.validation import check_endpoint_url
from domain.wire import echoed_credentials, mask_echoes, masked_headers, request_headers
from infra.network_guard import ForbiddenDestination
from infra.secrets import SecretBox


class PostedAttempt(NamedTuple):
    record: AttemptRecord
    retry_after: float | None  # the receiver's Retry-After, in seconds, on a throttling status
    final_type: str | None  # the type of a failure no retry can mend (an invalid URL, a forbidden host)


class AttemptPoster:
    """Opens the endpoint's credentials at send time (they are sealed in the registry) and
    makes the POST over the worker's pooled connections, within `http_timeout`."""

    def __init__(self, poster: WebhookPoster, secrets: SecretBox, http_timeout: float) -> None:
        self._poster = poster
        self._secrets = secrets
        self._http_timeout = http_timeout

    async def post(
        self,
        endpoint: Endpoint,
        attempt: AttemptInput,
        number: int,
        previous: AttemptRecord | None,
        start_by: datetime | None = None,
    ) -> PostedAttempt:
        """POST `attempt`'s body to `endpoint` as attempt `number`, after `previous` (the
        delivery's last attempt, whose record this one carries on); raise SlotMissed, sending
        nothing, when it would begin after `start_by`."""
        started_at = datetime.now(UTC)
        if start_by is not None and started_at > start_by:
            raise SlotMissed(started_at - start_by)
        reveal = self._secrets.reveal_for(attempt.account)
        headers = request_headers(endpoint, reveal, attempt.message_id, attempt.body, started_at)
        request = HttpRequestRecord(
            method="POST", url=endpoint.url, headers=masked_headers(endpoint, headers), body=attempt.body
        )
        clock = time.monotonic()
        timer = PhaseTimer()
        response: HttpResponseRecord | None = None
        retry_after: float | None = None
        final_type: str | None = None
        # A receiver may echo the request, in its answer or a malformed one an error quotes:
        # the log shows no credential it sent back.
        masked = partial(mask_echoes, credentials=echoed_credentials(endpoint, headers))
        try:
            _require_valid_url(endpoint.url)
            body = attempt.body.encode()
            # The log shows every header that went out, those httpx adds too (the seed's Test
            # displays "all the information transmitted"), credentials masked.
            sent = self._poster.headers_sent(endpoint.url, body, headers)
            request = request.model_copy(update={"headers": masked_headers(endpoint, sent)})
            deadline = asyncio.get_running_loop().time() + self._http_timeout
            answer = await self._poster.post(endpoint.url, body, headers, timer, deadline)
            response = answer.record(mask=masked)
            error: str | None
            if answer.cut_short is not None:
                error = f"HTTP response cut short: {describe_cut(answer.cut_short, self._http_timeout, masked)}"
            elif answer.complete:
                error = classify(answer.status_code, answer.headers.get("content-type"), answer.body)
            else:
                error = f"HTTP response body is larger than {MAX_RESPONSE_BYTES} bytes"
            if error and answer.status_code in THROTTLE_STATUSES:
                retry_after = parse_retry_after(answer.headers.get("retry-after"), datetime.now(UTC))
        except httpx.LocalProtocolError:
            # h11 refused to send the request (never echo its message: it quotes the header).
            # The custom header's value is what can cause it: a value stored before the API
            # refused a leading or trailing space or tab. No retry can mend it.
            error = INVALID_HEADER_ERROR if endpoint.custom_header else "The request is not valid HTTP: not sent"
            final_type = INVALID_ENDPOINT_HEADER
        except httpx.PoolTimeout:
            # No connection of the worker's pool came free in time: nothing went out, and the
            # receiver is not to blame. The run is interrupted and retried; no POST is counted.
            raise
        except httpx.HTTPError as exc:
            error = unreachable(describe(exc, self._http_timeout, kept_alive=not timer.connected, masked=masked))
        except TimeoutError:
            error = unreachable(f"no response within {self._http_timeout:g}s")
        except ForbiddenDestination as exc:
            error, final_type = f"Endpoint not allowed: {exc}", FORBIDDEN_DESTINATION
        except InvalidUrl as exc:
            error, final_type = f"Endpoint URL is invalid: it {exc}", INVALID_ENDPOINT_URL
        except (UnicodeError, httpx.InvalidURL):
            # What httpx's URL parser or a resolver refuses beyond our rules, should they ever be stricter.
            error, final_type = "Endpoint URL is invalid: its host is not a valid DNS name", INVALID_ENDPOINT_URL
        except Exception as exc:
            if not timer.sending:
                raise  # nothing went out: the run is interrupted, and no POST is counted
            # A fault of this worker's once the POST began: it counts, and the delivery ends
            # within its retries. Its message is not kept: it might quote what was sent.
            where = traceback.extract_tb(exc.__traceback__)[-1]
            activity.logger.error(
                "POST %s: %s at %s:%d", attempt.delivery_id, type(exc).__name__, where.filename, where.lineno
            )
            error = f"The attempt failed in the worker ({type(exc).__name__}); the endpoint may have received it"
        elapsed_ms = round((time.monotonic() - clock) * 1000)
        record = AttemptRecord(
            number=number,
            started_at=started_at,
            duration_ms=elapsed_ms,
            request=request,
            response=response,
            error=error,
            timings=timer.timings(),
            earlier=previous.all_attempts() if previous else [],
        )
        # A failed POST is a warning: the receiver is down or refusing, and someone may need to act.
        if error:
            activity.logger.warning("POST %s attempt %d: %s", attempt.delivery_id, number, error)
        else:
            activity.logger.info("POST %s attempt %d: delivered", attempt.delivery_id, number)
        _measure(response, error, elapsed_ms)
        return PostedAttempt(record, retry_after, final_type)


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
