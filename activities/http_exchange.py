"""One POST of a webhook over the worker's pooled connections, safe from the keep-alive race.

A receiver may close an idle keep-alive connection just as the next request is
sent on it (uvicorn closes them after 5 s, httpx keeps them 5 s). That request
then fails before any byte of a response, though the receiver may or may not
have read it. Such a POST is sent again once, on a new connection, within the
same attempt and with the same `webhook-id`, so a receiver that did read the
first one can tell it is the same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

# Read at most this much of a response: enough to judge any sane JSON answer,
# bounded so a receiver cannot exhaust the worker's memory.
MAX_RESPONSE_BYTES = 1024 * 1024

# What a request sent on a connection the other side closed fails with.
_CLOSED_UNDER_US = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


@dataclass
class Exchange:
    """A response: its status, headers and body (up to MAX_RESPONSE_BYTES)."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    complete: bool  # the body was read to its end


@dataclass
class _Trace:
    """What httpcore reports of a request: whether it opened a connection, whether an answer began."""

    connected: bool = False
    answered: bool = False

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event.startswith("connection.connect_tcp"):
            self.connected = True
        elif event == "http11.receive_response_headers.complete":
            self.answered = True


class WebhookPoster:
    def __init__(self, pooled: httpx.AsyncClient, fresh: httpx.AsyncClient) -> None:
        self._pooled = pooled
        self._fresh = fresh  # keeps no connection: each request opens its own

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Exchange:
        """The receiver's answer; raises httpx.HTTPError when none came."""
        trace = _Trace()
        try:
            return await _send(self._pooled, url, body, headers, trace)
        except _CLOSED_UNDER_US:
            if trace.connected or trace.answered:
                raise
        # The pooled connection was stale: once more, on a connection of its own.
        return await _send(self._fresh, url, body, headers, _Trace())


async def _send(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], trace: _Trace) -> Exchange:
    async with client.stream("POST", url, content=body, headers=headers, extensions={"trace": trace}) as resp:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                return Exchange(resp.status_code, resp.headers, b"".join(chunks)[:MAX_RESPONSE_BYTES], False)
        return Exchange(resp.status_code, resp.headers, b"".join(chunks), True)
