"""A webhook receiver for trying the service: prints what it gets, checks signatures, answers as told.

python -m tools.receiver [--port 9000] [--secret-file receiver-secret.json] [--status 200 [--times N]]

Every POST is printed: the event, its `webhook-id`, whether its signature verified, the headers (Basic
auth's password and any custom header's value masked: they are secrets) and the body. The signing
secret is read from `--secret-file` at each request, so saving the API's answer there is enough:

    curl -s -X POST localhost:8000/v1/endpoints/$EP/secret -o receiver-secret.json

The file may hold that answer (its `secret`, or `public_key` for `v1a`) or the key alone. The answer
is `200` with a JSON body (what the service counts as a success); `--status 503 --times 2` answers
503 to the first two POSTs of each delivery, then 200, to watch retries.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
import threading
import time
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from domain.signing import verify_signature

# Standard Webhooks' suggestion: older (or newer) timestamps are refused, so a captured request cannot be replayed.
TIMESTAMP_TOLERANCE_S = 300
# Headers whose values are shown; any other is an endpoint's custom header, whose value may be a secret.
_SHOWN = {
    "host",
    "content-type",
    "content-length",
    "user-agent",
    "accept",
    "accept-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
}
MASK = "********"


def signing_key(secret_file: Path) -> str | None:
    """The `whsec_` secret or `whpk_` public key in the file: the API's JSON answer, or the key alone."""
    try:
        text = secret_file.read_text().strip()
    except FileNotFoundError:
        return None
    if text.startswith("{"):
        answer: dict[str, Any] = json.loads(text)
        key = answer.get("secret") or answer.get("public_key")
        return str(key) if key else None
    return text or None


def signature_check(key: str | None, headers: dict[str, str], body: str, now: float) -> str:
    """One word a person reads, then why: `verified`, `unsigned`, `unchecked (…)` or `FAILED (…)`."""
    header = headers.get("webhook-signature")
    if header is None:
        return "unsigned"
    if key is None:
        return "unchecked (no key: save the API's /secret answer in the secret file)"
    try:
        timestamp = int(headers["webhook-timestamp"])
    except (KeyError, ValueError):
        return "FAILED (no webhook-timestamp)"
    if abs(now - timestamp) > TIMESTAMP_TOLERANCE_S:
        return f"FAILED (timestamp {timestamp} is more than {TIMESTAMP_TOLERANCE_S}s away: a replay?)"
    if not verify_signature(key, headers.get("webhook-id", ""), timestamp, body, header):
        return "FAILED (no signature matches the key)"
    return "verified"


def masked(headers: dict[str, str]) -> dict[str, str]:
    shown = {}
    for name, value in headers.items():
        if name == "authorization":
            shown[name] = _masked_authorization(value)
        else:
            shown[name] = value if name in _SHOWN else MASK
    return shown


def _masked_authorization(value: str) -> str:
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() == "basic":
        try:
            username = base64.b64decode(credentials, validate=True).decode().partition(":")[0]
            return f"Basic {username}:{MASK}"
        except (binascii.Error, UnicodeDecodeError):
            pass
    return f"{scheme} {MASK}"


class Answers:
    """`--status` for the first `--times` POSTs of each delivery (all, without `--times`), then 200."""

    def __init__(self, status: int, times: int | None) -> None:
        self.status, self.times = status, times
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def next_for(self, webhook_id: str) -> int:
        with self._lock:
            self._seen[webhook_id] += 1
            if self.times is None or self._seen[webhook_id] <= self.times:
                return self.status
            return HTTPStatus.OK


def make_handler(secret_file: Path, answers: Answers) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            body = raw.decode("utf-8", errors="replace")
            check = signature_check(signing_key(secret_file), headers, body, time.time())
            webhook_id = headers.get("webhook-id", "-")
            status = answers.next_for(webhook_id)
            try:
                parsed: Any = json.loads(body)
                event = parsed.get("Event", "?") if isinstance(parsed, dict) else "?"
                shown_body = json.dumps(parsed, indent=2, ensure_ascii=False)
            except json.JSONDecodeError:
                event, shown_body = "?", body
            lines = [
                f"[{time.strftime('%H:%M:%S')}] {event}  webhook-id={webhook_id}  signature={check}  answered {status}",
                *(f"    {name}: {value}" for name, value in masked(headers).items()),
                *(f"    {line}" for line in shown_body.splitlines()),
                "",
            ]
            print("\n".join(lines), flush=True)
            self._answer(status)

        def _answer(self, status: int) -> None:
            ok = 200 <= status < 300
            content = json.dumps({"received": True} if ok else {"error": f"answered {status} as told"}).encode()
            if status == HTTPStatus.NO_CONTENT:
                content = b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # each request is printed above, once

    return Handler


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret-file", type=Path, default=Path("receiver-secret.json"), help="read at each request")
    parser.add_argument("--status", type=int, default=200, choices=range(200, 600), metavar="CODE", help="answer this")
    parser.add_argument("--times", type=int, help="answer --status to the first N POSTs of each delivery, then 200")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    server = ThreadingHTTPServer(
        (args.host, args.port), make_handler(args.secret_file, Answers(args.status, args.times))
    )
    print(
        f"Receiving webhooks at http://{args.host}:{args.port}/ (any path; Ctrl-C stops)\n"
        f"  signing key from {args.secret_file.resolve()} (read at each request)\n"
        f"  answering {args.status}"
        + (f" to the first {args.times} POSTs of each delivery, then 200" if args.times else ""),
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
