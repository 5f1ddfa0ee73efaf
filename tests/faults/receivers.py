"""Receivers for the fault tests, on 127.0.0.1.

`ScriptedReceiver` is an ASGI app (served with tests.receiver.BackgroundServer)
whose endpoints answer by delivery: the n-th POST carrying one `webhook-id`
gets the n-th reply of the endpoint's script. `RawReceiver` is a bare asyncio
server for what a well-behaved HTTP server cannot do: never answer, hang up
mid-response, stream an endless body.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tests.receiver import OK, Reply


@dataclass
class Post:
    path: str
    webhook_id: str
    nth: int  # of the POSTs of this webhook-id at this path, from 1
    received_at: float  # time.monotonic()
    reply: Reply
    answered_at: float | None = None

    @property
    def answer_due(self) -> float:
        """When the reply was (or would have been) sent: its delay after the request arrived."""
        return self.received_at + self.reply.delay


class ScriptedReceiver:
    """Records every POST; each endpoint answers each delivery from the start of its script."""

    def __init__(self) -> None:
        self.base_url = ""
        self.posts: list[Post] = []
        self._scripts: dict[str, tuple[Reply, ...]] = {}

    def endpoint(self, *replies: Reply) -> str:
        """A fresh URL whose deliveries each get `replies` in order, then the last one forever."""
        path = f"/hooks/{uuid.uuid4().hex[:12]}"
        self._scripts[path] = replies or (OK,)
        return self.base_url + path

    def posts_to(self, url: str) -> list[Post]:
        path = url.removeprefix(self.base_url)
        return [p for p in self.posts if p.path == path]

    def counts(self, url: str) -> Counter[str]:
        """POSTs per webhook-id at this endpoint."""
        return Counter(p.webhook_id for p in self.posts_to(url))

    def count(self, webhook_id: str) -> int:
        return sum(1 for p in self.posts if p.webhook_id == webhook_id)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        for _ in range(10_000):  # the webhook body arrives in a few messages at most
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        webhook_id = headers.get("webhook-id", "")
        script = self._scripts.get(path, (Reply(status=404),))
        nth = 1 + sum(1 for p in self.posts if p.path == path and p.webhook_id == webhook_id)
        reply = script[min(nth, len(script)) - 1]
        post = Post(path, webhook_id, nth, time.monotonic(), reply)
        self.posts.append(post)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        raw_headers = [(k.encode(), v.encode()) for k, v in reply.headers]
        try:
            await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": reply.body})
        except OSError:  # the client is gone (a killed worker): nothing to answer
            return
        post.answered_at = time.monotonic()


@dataclass
class Exchange:
    """One connection to the raw receiver."""

    path: str
    webhook_id: str
    opened_at: float
    closed_at: float | None = None
    body_bytes_sent: int = 0


class RawReceiver:
    """A bare HTTP/1.1 server, one misbehaviour per path:

    - `/silent`: reads the request and never answers (until the client hangs up, 60 s at most);
    - `/hangup-headers`: a status line and half a header, then closes;
    - `/hangup-body`: complete headers announcing 100 bytes, 9 of them, then closes;
    - `/cut503`: 503 with `Retry-After: 3`, headers announcing 50 bytes, one of them, then closes;
    - `/huge`: 200 OK JSON with a chunked body of `huge_bytes`, streamed as fast as the client reads;
    - `/trickle`: complete headers announcing 100 bytes, then one every 0.5 s (each read is quick,
      the whole answer takes 50 s);
    - `/switching`: 101 Switching Protocols, an upgrade the POST did not ask for;
    - `/garbled`: a status line that is not HTTP;
    - `/badgzip`: 200 JSON whose body is not the gzip its Content-Encoding says;
    - `/hugeheaders`: 200 JSON with 200 KB of headers.
    """

    def __init__(self, huge_bytes: int = 200 * 1024 * 1024) -> None:
        self.huge_bytes = huge_bytes
        self.exchanges: list[Exchange] = []
        self.base_url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, path: str) -> str:
        return self.base_url + path

    def exchanges_to(self, url: str) -> list[Exchange]:
        path = url.removeprefix(self.base_url)
        return [e for e in self.exchanges if e.path == path]

    async def __aenter__(self) -> RawReceiver:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        exchange: Exchange | None = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 10)
            exchange = Exchange(path, headers.get("webhook-id", ""), time.monotonic())
            self.exchanges.append(exchange)
            if path == "/silent":
                await asyncio.wait_for(reader.read(), 60)  # EOF: the client gave up
            elif path == "/hangup-headers":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: applica")
                await writer.drain()
            elif path == "/hangup-body":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
                writer.write(b'{"receiv')
                await writer.drain()
            elif path == "/cut503":
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 3\r\n"
                    b"Content-Length: 50\r\n\r\n{"
                )
                await writer.drain()
            elif path == "/huge":
                await self._stream_huge(writer, exchange)
            elif path == "/trickle":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
                for _ in range(100):
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(0.5)
            elif path == "/switching":
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                await writer.drain()
                await asyncio.wait_for(reader.read(), 60)
            elif path == "/hugeheaders":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Huge: " + b"h" * 200_000)
                writer.write(b"\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
            elif path == "/badgzip":
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                    b"Content-Length: 10\r\n\r\nnot gzip!!"
                )
                await writer.drain()
            elif path == "/garbled":
                writer.write(b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            if exchange is not None:
                exchange.closed_at = time.monotonic()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _stream_huge(self, writer: asyncio.StreamWriter, exchange: Exchange) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"[" + b"1," * 32767 + b"1]"  # 64 KiB of valid JSON, sent again and again
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        deadline = time.monotonic() + 60
        while exchange.body_bytes_sent < self.huge_bytes and time.monotonic() < deadline:
            writer.write(framed)
            await writer.drain()
            exchange.body_bytes_sent += len(chunk)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
