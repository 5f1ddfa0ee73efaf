"""A real HTTP receiver on 127.0.0.1 for the tests: records every request, answers from a script."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b'{"received": true}'
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    delay: float = 0.0
    answer_when: asyncio.Event | None = None  # the answer waits for the test to set it


OK = Reply()
NO_CONTENT = Reply(status=204, body=b"", headers=())


def error(status: int, **headers: str) -> Reply:
    return Reply(
        status=status, body=b'{"error": true}', headers=(("content-type", "application/json"), *headers.items())
    )


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default=0.0)


class Receiver:
    """ASGI app: each test takes its own path, scripts its replies, and reads what arrived."""

    def __init__(self) -> None:
        self.base_url = ""
        self._requests: dict[str, list[ReceivedRequest]] = defaultdict(list)
        self._scripts: dict[str, list[Reply]] = {}
        self._arrived = asyncio.Condition()

    def path(self, *replies: Reply) -> str:
        """A fresh path answering `replies` in order, then the last one forever (default: 200 JSON)."""
        path = f"/hooks/{uuid.uuid4().hex[:12]}"
        self._scripts[path] = list(replies) or [OK]
        return path

    def url(self, *replies: Reply) -> str:
        return self.base_url + self.path(*replies)

    def script(self, url_or_path: str, *replies: Reply) -> None:
        """Answer the next requests with `replies`, then the last one forever."""
        self._scripts[url_or_path.removeprefix(self.base_url)] = list(replies)

    def requests(self, url_or_path: str) -> list[ReceivedRequest]:
        return list(self._requests[url_or_path.removeprefix(self.base_url)])

    async def wait_for(self, url_or_path: str, count: int, timeout: float = 20.0) -> list[ReceivedRequest]:
        path = url_or_path.removeprefix(self.base_url)
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self._requests[path]) >= count), timeout)
        return self.requests(path)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        script = self._scripts.get(path, [Reply(status=404)])
        reply = script.pop(0) if len(script) > 1 else script[0]
        async with self._arrived:
            self._requests[path].append(
                ReceivedRequest(scope["method"], path, headers, body, asyncio.get_running_loop().time())
            )
            self._arrived.notify_all()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.answer_when is not None:
            await reply.answer_when.wait()
        raw_headers = [(k.encode(), v.encode()) for k, v in reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": reply.body})


class BackgroundServer:
    """Serves an ASGI app with uvicorn inside the test's event loop."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="auto")
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None
        self.url = f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> BackgroundServer:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.should_exit = True
        if self._task:
            await self._task
