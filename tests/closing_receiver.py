"""A raw HTTP/1.1 receiver on 127.0.0.1 that reads some requests and closes their connection
without a byte of answer.

That is what a receiver whose idle timeout fires just as a request comes in does, at its
worst: it has read the request. `answers` decides, for each request read, whether it is
answered (the connection kept alive) or dropped (the connection closed).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

_OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 17\r\n\r\n{"received":true}'


@dataclass(frozen=True)
class Arrival:
    """A request as the receiver read it."""

    connection: int  # numbered from 1 in the order they were opened
    on_connection: int  # 0 for the first request on its connection
    idle_s: float  # since the connection's last answer (0 for its first request)
    webhook_id: str
    times_seen: int  # requests with this webhook-id read before this one


@dataclass(frozen=True)
class Seen:
    arrival: Arrival
    answered: bool

    @property
    def connection(self) -> int:
        return self.arrival.connection

    @property
    def webhook_id(self) -> str:
        return self.arrival.webhook_id


def answers_per_connection(count: Callable[[int], int]) -> Callable[[Arrival], bool]:
    """Answer the first `count(connection)` requests of each connection, drop the next."""
    return lambda arrival: arrival.on_connection < count(arrival.connection)


class ClosingReceiver:
    def __init__(self, answers: Callable[[Arrival], bool]) -> None:
        self._answers = answers
        self._numbers = itertools.count(1)
        self.seen: list[Seen] = []
        self._times_seen: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self.url = ""

    def posts_of(self, webhook_id: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.webhook_id == webhook_id]

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
        last_answer: float | None = None
        try:
            for served in itertools.count():
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line)
                lowered = {k.lower(): v for k, v in headers.items()}
                await reader.readexactly(int(lowered.get("content-length", "0")))
                webhook_id = lowered.get("webhook-id", "")
                arrival = Arrival(
                    connection=number,
                    on_connection=served,
                    idle_s=0.0 if last_answer is None else time.monotonic() - last_answer,
                    webhook_id=webhook_id,
                    times_seen=self._times_seen[webhook_id],
                )
                answer = self._answers(arrival)
                self.seen.append(Seen(arrival, answer))
                self._times_seen[webhook_id] += 1
                if not answer:
                    break
                writer.write(_OK)
                await writer.drain()
                last_answer = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
