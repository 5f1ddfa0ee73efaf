"""A raw HTTP/1.1 receiver on 127.0.0.1 that closes kept-alive connections when the next request comes.

It reproduces the keep-alive race deterministically: it answers the first
`answers_per_connection` requests of a connection (keeping it alive), then
reads the next request and closes the connection without a byte of answer —
what a receiver whose idle timeout fires just as a request arrives does.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass

_OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 17\r\n\r\n{"received":true}'


@dataclass(frozen=True)
class Seen:
    connection: int
    webhook_id: str
    answered: bool


class ClosingReceiver:
    def __init__(self, answers_per_connection: Callable[[int], int] = lambda _: 1) -> None:
        self._answers = answers_per_connection  # by connection number
        self._numbers = itertools.count(1)
        self.seen: list[Seen] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> ClosingReceiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hooks"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = next(self._numbers)
        answers = self._answers(number)
        try:
            for served in itertools.count():
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line)
                lowered = {k.lower(): v for k, v in headers.items()}
                await reader.readexactly(int(lowered.get("content-length", "0")))
                answer = served < answers
                self.seen.append(Seen(number, lowered.get("webhook-id", ""), answer))
                if not answer:
                    break
                writer.write(_OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
