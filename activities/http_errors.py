"""Why no response came, in words an operator can act on."""

from __future__ import annotations

import ast
import os
import re
import socket
import ssl
from collections.abc import Callable

import httpx


def describe(
    exc: httpx.HTTPError, timeout: float, *, kept_alive: bool = False, masked: Callable[[str], str] = str
) -> str:
    """The cause of a failed exchange: a timeout, a refused connection, a TLS or DNS failure.
    `kept_alive`: the request went out on a connection an earlier POST had opened. `masked`
    hides the credentials a receiver's bytes may echo, before they are cut to a quote's length
    (a credential cut in two would be masked in neither half)."""
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
    message = str(exc)
    if isinstance(exc, httpx.RemoteProtocolError) and message.startswith(_TOO_LONG):
        return "the receiver's response headers are larger than the worker reads (about 100 KiB)"
    if isinstance(exc, httpx.RemoteProtocolError) and message.startswith(_SWITCHED):
        return "the receiver answered 101 Switching Protocols, an upgrade the POST did not ask for"
    if isinstance(exc, httpx.RemoteProtocolError) and message and not message.startswith(_CLOSED):
        # A body after a 204 (or 304) is read as the start of the next answer on its connection.
        reused = ", on a connection kept alive from an earlier POST whose answer may have left bytes behind"
        quoted = _quoted(message, masked)
        return f"the receiver's answer is not valid HTTP/1.1 ({quoted}){reused if kept_alive else ''}"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        # A closed connection often comes with no message at all: say what happened.
        detail = f" ({_clipped(masked(message))})" if message else ""
        # Such a POST is not sent again (the receiver may have read it); naming the kept-alive
        # connection tells its owner where to look: an idle timeout shorter than the worker's.
        reused = ", on a connection kept alive from an earlier POST" if kept_alive else ""
        return f"connection closed by the receiver before any response{detail}{reused}"
    return f"{type(exc).__name__}: {_clipped(masked(message))}" if message else type(exc).__name__


def describe_cut(exc: httpx.TransportError | TimeoutError, timeout: float, masked: Callable[[str], str] = str) -> str:
    """Why an answer's body stopped before its end: its status and headers had come."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"its body did not end within {timeout:g}s"
    message = str(exc)
    if isinstance(exc, httpx.RemoteProtocolError) and message and not message.startswith(_CLOSED):
        # A malformed chunk: h11 quotes the receiver's bytes, which may echo a credential.
        return f"its body is not valid HTTP/1.1 ({_quoted(message, masked)})"
    detail = f" ({_clipped(masked(message))})" if message else ""
    return f"the connection closed before its body ended{detail}"


# How httpcore and h11 begin their words for the end of a connection (anything else h11 raises
# is a malformed answer: its words quote the receiver's bytes, so only their start is read),
# and for a 101 answer, which h11 refuses as an upgrade nobody proposed.
_CLOSED = ("Server disconnected", "peer closed connection")
_SWITCHED = "Received server _SWITCH_UPGRADE"
# h11's words for a response head beyond its buffer (httpcore's h11 default, 100 KiB).
_TOO_LONG = "Receive buffer too long"
# A malformed status line or header is quoted in h11's message: enough of it to recognise.
_QUOTED_CHARS = 200


# h11 quotes what it refused as Python writes bytes: bytearray(b'<b>x</b>HTTP/1.1 204 No Content').
_BYTES_QUOTED = re.compile(r"bytearray\((b'(?:[^'\\]|\\.)*'|b\"(?:[^\"\\]|\\.)*\")\)")


# As Python's repr and JSON write them, so that a credential holding a tab (a header value may)
# is still found by the echo masks, which look for it as sent and as JSON escapes it.
_ESCAPED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _unquoted(message: str) -> str:
    """h11's words with the bytes they quote as text between double quotes, not Python's repr."""

    def as_text(quoted: re.Match[str]) -> str:
        raw: bytes = ast.literal_eval(quoted.group(1))
        text = raw.decode("utf-8", "replace")
        return '"' + "".join(c if c.isprintable() else _ESCAPED.get(c, f"\\x{ord(c):02x}") for c in text) + '"'

    return _BYTES_QUOTED.sub(as_text, message)


def _quoted(message: str, masked: Callable[[str], str]) -> str:
    """h11's words for a malformed answer, as text, credentials masked before the cut."""
    return _clipped(masked(_unquoted(message)))


def _clipped(text: str) -> str:
    return text if len(text) <= _QUOTED_CHARS else text[:_QUOTED_CHARS] + "…"


def _root_cause(exc: BaseException) -> BaseException:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
        if isinstance(seen, BaseExceptionGroup) and seen.exceptions:
            seen = seen.exceptions[0]
    return seen
