"""One POST of a webhook over the worker's pooled connections.

A request that fails on a kept-alive connection is not sent again within its
attempt: the receiver may have read it, and every POST a receiver sees is an
attempt in the log (CONTRACT §4). The pool avoids the race instead
(infra/http.py: idle connections are dropped before receivers drop them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from domain.records import AttemptTimings, HttpResponseRecord
from domain.status import status_text

# Read at most this much of a response: enough to judge any sane JSON answer,
# bounded so a receiver cannot exhaust the worker's memory.
MAX_RESPONSE_BYTES = 1024 * 1024
# What the log keeps of a response's body,
STORED_BODY_BYTES = 16 * 1024
# and of its headers, as much: a delivery's record
# carries every attempt, and a receiver's 100 KB of headers on each of 11 attempts outgrew
# what Temporal keeps of a failure, which lost the delivery's whole log.
STORED_HEADER_CHARS = 16 * 1024
STORED_HEADER_VALUE_CHARS = 1024


@dataclass
class Exchange:
    """A response: its status, headers and body (up to MAX_RESPONSE_BYTES)."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    complete: bool  # the body was read to its end
    # The body did not decode as its Content-Encoding said: judged as if empty (not JSON; a
    # 204 ignores it anyway), and shown as cut.
    undecodable: bool = False
    # Why the body stopped before its end (the connection closed, or the time ran out): an
    # answer came all the same, its status and headers kept and its Retry-After honoured.
    cut_short: httpx.TransportError | TimeoutError | None = None

    def record(self, mask: Callable[[str], str]) -> HttpResponseRecord:
        """The answer as the delivery log keeps it: its headers and the first STORED_BODY_BYTES
        of its body, each passed through `mask` before it is cut (a cut could split a secret)."""
        headers, clipped = self._stored_headers(mask)
        body = mask(self.body.decode("utf-8", errors="replace")).encode()
        return HttpResponseRecord(
            status_code=self.status_code,
            status_text=status_text(self.status_code),
            headers=headers,
            headers_truncated=clipped,
            body=body[:STORED_BODY_BYTES].decode("utf-8", errors="ignore"),  # a character cut in two goes
            body_truncated=len(body) > STORED_BODY_BYTES or not self.complete or self.undecodable,
        )

    def _stored_headers(self, mask: Callable[[str], str]) -> tuple[dict[str, str], bool]:
        """The headers the log keeps, one value a name (a repeated header's values joined as
        HTTP allows), masked, and whether any was clipped or left out. The content type, which
        judges the answer, is shown as it came."""
        flat: dict[str, str] = {}
        for name, value in self.headers.multi_items():
            flat[name] = f"{flat[name]}, {value}" if name in flat else value
        kept: dict[str, str] = {}
        size, clipped = 0, False
        for name, value in flat.items():
            value = value if name.lower() == "content-type" else mask(value)
            if len(value) > STORED_HEADER_VALUE_CHARS:
                value, clipped = value[:STORED_HEADER_VALUE_CHARS] + "…", True
            size += len(name) + len(value)
            if size > STORED_HEADER_CHARS:
                return kept, True
            kept[name] = value
        return kept, clipped


class PhaseTimer:
    """httpcore's trace of a request: whether it opened a connection, whether the request
    began to go out, and how long each phase took."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._at: dict[str, float] = {}

    @property
    def connected(self) -> bool:
        return "connection.connect_tcp.started" in self._at

    @property
    def sending(self) -> bool:
        """The request began to go out: from then on the receiver may have it."""
        return "http11.send_request_headers.started" in self._at

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        self._at[event] = time.monotonic()

    def _between(self, first: str, last: str) -> float | None:
        if first in self._at and last in self._at:
            return round((self._at[last] - self._at[first]) * 1000, 2)
        return None

    def timings(self) -> AttemptTimings:
        return AttemptTimings(
            connect_ms=self._between("connection.connect_tcp.started", "connection.connect_tcp.complete"),
            tls_ms=self._between("connection.start_tls.started", "connection.start_tls.complete"),
            ttfb_ms=self._between("http11.send_request_headers.started", "http11.receive_response_headers.complete"),
            total_ms=round((time.monotonic() - self._started) * 1000, 2),
        )


class WebhookPoster:
    def __init__(self, pooled: httpx.AsyncClient) -> None:
        self._pooled = pooled

    def headers_sent(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        """Every header of the POST as it goes on the wire: `headers` and those httpx adds
        (Host, Accept, Accept-Encoding, Connection, Content-Length), in their order and case."""
        request = self._pooled.build_request("POST", url, content=body, headers=headers)
        return {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers.raw}

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timer: PhaseTimer, deadline: float
    ) -> Exchange:
        """The receiver's answer, by the event loop's `deadline`; raises httpx.HTTPError, or
        TimeoutError, when none began. `timer` times its phases. httpx's own timeout bounds each
        wait (connect, each read), not the exchange: a receiver sending a byte a second would
        hold the attempt as long as it liked."""
        stream = self._pooled.stream("POST", url, content=body, headers=headers, extensions={"trace": timer})
        async with contextlib.AsyncExitStack() as exchange:
            async with asyncio.timeout_at(deadline):
                resp = await exchange.enter_async_context(stream)
            chunks: list[bytes] = []
            size = 0
            try:
                async with asyncio.timeout_at(deadline):
                    async for chunk in resp.aiter_bytes():
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > MAX_RESPONSE_BYTES:
                            kept = b"".join(chunks)[:MAX_RESPONSE_BYTES]
                            return Exchange(resp.status_code, resp.headers, kept, complete=False)
            except httpx.DecodingError:  # an answer came, its body unreadable: not "no response"
                return Exchange(resp.status_code, resp.headers, b"", complete=True, undecodable=True)
            except (httpx.TransportError, TimeoutError) as cut:  # so did this one, cut short
                return Exchange(resp.status_code, resp.headers, b"".join(chunks), False, cut_short=cut)
            return Exchange(resp.status_code, resp.headers, b"".join(chunks), True)
