"""The benchmark's receiver, in its own process: answers fast and records every POST.

python -m bench.receiver PORT

`POST /ok/...` answers 200 JSON, `POST /fail/...` 500 JSON, so the worker's backoff
decides (a 503 would throttle the whole endpoint: its other deliveries would be held
back without a POST, and the backlog's first attempts would never all arrive). Each
POST is recorded as (webhook-id, path, arrival time on CLOCK_MONOTONIC — one clock
for every process of the machine, so the harness can subtract its own timestamps). `GET /_count` and
`GET /_arrivals?since=i` read the record.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any
from urllib.parse import parse_qs

import uvicorn

_JSON = [(b"content-type", b"application/json")]
_OK_BODY = b'{"received":true}'


class BenchReceiver:
    def __init__(self) -> None:
        self.arrivals: list[tuple[str, str, float]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if scope["method"] == "GET":
            await self._read(path, scope.get("query_string", b"").decode(), send)
            return
        while True:  # drain the body: a real receiver reads it
            message = await receive()
            if not message.get("more_body"):
                break
        arrived = time.monotonic()
        webhook_id = ""
        for name, value in scope["headers"]:
            if name == b"webhook-id":
                webhook_id = value.decode("latin-1")
                break
        self.arrivals.append((webhook_id, path, arrived))
        status = 500 if path.startswith("/fail/") else 200
        await send({"type": "http.response.start", "status": status, "headers": _JSON})
        await send({"type": "http.response.body", "body": _OK_BODY if status == 200 else b'{"error":true}'})

    async def _read(self, path: str, query: str, send: Any) -> None:
        if path == "/_count":
            body: dict[str, Any] = {"total": len(self.arrivals)}
        elif path == "/_arrivals":
            since = int(parse_qs(query).get("since", ["0"])[0])
            body = {"total": len(self.arrivals), "arrivals": self.arrivals[since:]}
        else:
            await send({"type": "http.response.start", "status": 404, "headers": _JSON})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": _JSON})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def main() -> None:
    port = int(sys.argv[1])
    # No access log: the receiver must cost as little as possible.
    uvicorn.run(BenchReceiver(), host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
