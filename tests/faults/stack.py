"""Harness of the fault-injection tests: the service as real processes a test can crash.

A Temporal dev server on a SQLite file in the test's tmp_path, `python worker.py`
processes and the API under uvicorn, each on free ports of 127.0.0.1, each
stopped by its own PID when the test ends (pass or fail). Logs go to files in
tmp_path, so a test can read what a worker did (`POST <delivery id> attempt N`).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import SecretStr
from temporalio.client import Client

from devstack.devserver import start_dev_server, wait_until_serving
from devstack.lifetime import die_with_parent
from domain.records import DeliveryRecord
from infra.codec import new_key
from infra.temporal import connect
from services.deliveries import ended_record
from settings import Settings
from tests.conftest import free_port
from tests.faults.receivers import Post
from tests.waiting import eventually
from workflows.delivery import DeliveryWorkflow

ROOT = Path(__file__).resolve().parents[2]

# What every service process of these tests gets; a test overrides what its fault needs.
BASE_ENV = {
    "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
    "WEBHOOKS_RETRY_INITIAL_INTERVAL": "0.2",
    "WEBHOOKS_RETRY_BACKOFF": "1.0",
    "WEBHOOKS_RETRY_MAX_INTERVAL": "2",
    "WEBHOOKS_HTTP_TIMEOUT": "2",
}

POST_LINE = re.compile(r"POST (\S+) attempt (\d+): ")


# -- bounded waiting ---------------------------------------------------------------------------


async def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `check` until it holds, at most `timeout` seconds (and a bounded number of times)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        if check():
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(interval)
    if not check():
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


# -- processes ---------------------------------------------------------------------------------


class TemporalServer:
    """`temporal server start-dev` on a db file: killed (SIGKILL) and started again on the same port."""

    def __init__(self, db_file: Path, log_file: Path, port: int | None = None) -> None:
        self.db_file = db_file
        self.log_file = log_file
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    async def start(self, *, same_port: bool = False) -> None:
        """Start serving; unless `same_port` (a restart), a port taken since free_port() chose it
        (by any process of this machine) is replaced by another, up to 3 times."""
        for attempt in range(3):
            assert self.process is None or self.process.poll() is not None, "already running"
            if self._log is not None:
                self._log.close()
            self._log = self.log_file.open("ab")
            self.process = start_dev_server(self.port, db_file=self.db_file, log=self._log)
            try:
                await wait_until_serving(self.address, self.process, timeout=60)
                return
            except RuntimeError:  # it exited
                await self.stop()
                taken = "address already in use" in self.log_file.read_text(errors="replace")
                if same_port or not taken or attempt == 2:
                    raise
                self.port = free_port()
                self.address = f"127.0.0.1:{self.port}"
            except BaseException:
                await self.stop()
                raise

    async def kill(self) -> None:
        """The crash: SIGKILL by PID, then reap it."""
        assert self.process is not None
        self.process.kill()
        await self._reap(15)

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await self._reap(15)
            except AssertionError:
                self.process.kill()
                await self._reap(15)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def _reap(self, timeout: float) -> None:
        process = self.process
        assert process is not None
        await wait_until(lambda: process.poll() is not None, timeout, f"temporal (pid {process.pid}) to exit")


@dataclass
class ServiceProcess:
    """A worker or API process of the service, started by the test."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def kill(self) -> None:
        """The crash: SIGKILL, by this process's PID only."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def posts_logged(self) -> list[tuple[str, int]]:
        """(delivery id, attempt number) of every `POST <id> attempt N` line this worker logged."""
        return [(m.group(1), int(m.group(2))) for m in POST_LINE.finditer(self.log())]

    def cancelled_attempts(self) -> int:
        """Attempts this worker was still running when Temporal had already timed them out
        (their heartbeat was refused, so the SDK cancelled them): the SDK logs each one."""
        return self.log().count("CancelledError: Activity cancelled")

    def memory_kib(self, field_name: str = "VmRSS") -> int:
        """VmRSS (resident now) or VmHWM (peak resident) of the process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field_name} in /proc/{self.pid}/status")

    async def stop(self) -> None:
        if self.running:
            self.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 15)

    async def shut_down(self, within: float) -> None:
        """SIGTERM, as a deploy stops a process: it finishes what it is doing, then exits."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.process.wait(), within)


@dataclass
class Stack:
    """One test's Temporal server and the configuration its service processes share."""

    tmp: Path
    server: TemporalServer
    task_queue: str = field(default_factory=lambda: f"faults-{uuid.uuid4().hex[:8]}")
    key: str = field(default_factory=new_key)
    secrets_key: str = field(default_factory=new_key)
    overrides: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
        return (
            inherited
            | BASE_ENV
            | self.overrides
            | {
                "WEBHOOKS_TEMPORAL_ADDRESS": self.server.address,
                "WEBHOOKS_TASK_QUEUE": self.task_queue,
                "WEBHOOKS_ENCRYPTION_KEY": self.key,
                "WEBHOOKS_SECRETS_KEY": self.secrets_key,
                "PYTHONUNBUFFERED": "1",
            }
        )

    def settings(self) -> Settings:
        return Settings(
            temporal_address=self.server.address,
            task_queue=self.task_queue,
            encryption_key=SecretStr(self.key),
            secrets_key=SecretStr(self.secrets_key),
            allow_private_networks=True,
            api_token=None,
        )

    async def client(self) -> Client:
        return await connect(self.settings())

    async def spawn(self, name: str, *args: str, url: str = "", code: Path = ROOT) -> ServiceProcess:
        """`python *args` in `code`: this checkout, or another release's source tree."""
        log_path = self.tmp / f"{name}.log"
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *args,
                cwd=code,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(),  # a killed pytest leaves no worker or API behind
            )
        return ServiceProcess(name, process, log_path, url)


def fixed_retries(seconds: float) -> dict[str, str]:
    """WEBHOOKS_* overrides: every retry `seconds` after the failed POST (the worker's backoff is 1.0)."""
    return {
        "WEBHOOKS_RETRY_INITIAL_INTERVAL": str(seconds),
        "WEBHOOKS_RETRY_MAX_INTERVAL": str(seconds),
        "WEBHOOKS_HTTP_TIMEOUT": "10",  # not what these tests are about: no timeout under a loaded machine
    }


@asynccontextmanager
async def temporal_stack(tmp_path: Path, **overrides: str) -> AsyncIterator[Stack]:
    """A dev server on `tmp_path/temporal.db`; `overrides` are WEBHOOKS_* variables of the processes."""
    server = TemporalServer(tmp_path / "temporal.db", tmp_path / "temporal.log")
    try:
        await server.start()
        yield Stack(tmp_path, server, overrides=dict(overrides))
    finally:
        await server.stop()


@asynccontextmanager
async def worker_process(stack: Stack, name: str = "worker", code: Path = ROOT) -> AsyncIterator[ServiceProcess]:
    """`python worker.py`, yielded once it polls its task queue; killed by PID at the end."""
    worker = await stack.spawn(name, "worker.py", code=code)
    try:
        await wait_until(
            lambda: "worker polling task queue" in worker.log() or not worker.running,
            30,
            f"{name} to start polling",
        )
        assert worker.running, f"{name} exited with {worker.process.returncode}:\n{worker.log_tail()}"
        yield worker
    finally:
        await worker.stop()


async def _healthy_or_exited(api: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=5) as http:

        async def healthy() -> bool:
            if not api.running:
                return True
            try:
                return (await http.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(healthy, bool, 30, f"{api.name} /healthz to answer 200", interval=0.1)


@asynccontextmanager
async def api_process(stack: Stack, name: str = "api", code: Path = ROOT) -> AsyncIterator[ServiceProcess]:
    """The API under uvicorn on a free port, yielded once /healthz answers 200; killed by PID at the end."""
    for attempt in range(3):
        port = free_port()
        args = ("-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1", "--port", str(port))
        api = await stack.spawn(name, *args, url=f"http://127.0.0.1:{port}", code=code)
        try:
            await _healthy_or_exited(api)
        except BaseException:
            await api.stop()
            raise
        if api.running:
            break
        await api.stop()
        # Another process of this machine took the port after free_port() chose it: choose again.
        if "address already in use" not in api.log() or attempt == 2:
            raise AssertionError(f"{name} exited with {api.process.returncode}:\n{api.log_tail()}")
    try:
        yield api
    finally:
        await api.stop()


def timeline(posts: list[Post], moment: float, logs: dict[str, str], delivery_id: str) -> str:
    """A delivery's POSTs (seconds from `moment`, e.g. a kill, and the reply) and the attempts
    each worker's log shows for it: the evidence a failure message needs."""
    seen = ", ".join(f"{p.received_at - moment:+.2f}s→{p.reply.status}" for p in posts)
    logged = {
        name: [m.group(2) for m in POST_LINE.finditer(log) if m.group(1) == delivery_id] for name, log in logs.items()
    }
    return f"POSTs at [{seen}], attempts logged {logged}"


# -- the service's API, as its users call it ---------------------------------------------------

ALL_EVENTS = ["ORDER_SHIPPED", "ORDER_ERROR", "TRACKING_UPDATE"]


async def create_endpoint(
    api: httpx.AsyncClient, url: str, max_retries: int | None = None, events: list[str] | None = None
) -> str:
    """Register an endpoint (retry enabled with `max_retries`, or disabled when None); its id."""
    body: dict[str, Any] = {"url": url, "events": events or ALL_EVENTS}
    if max_retries is not None:
        body["retry"] = {"enabled": True, "max_retries": max_retries}
    response = await api.post("/v1/endpoints", json=body)
    assert response.status_code == 201, response.text
    endpoint_id: str = response.json()["id"]
    return endpoint_id


async def outcome(client: Client, delivery_id: str, timeout: float) -> DeliveryRecord:
    """The finished delivery's record from Temporal, waiting at most `timeout` seconds."""
    handle = client.get_workflow_handle_for(DeliveryWorkflow.run, delivery_id)
    try:
        return await asyncio.wait_for(ended_record(handle), timeout)
    except TimeoutError:
        raise AssertionError(f"delivery {delivery_id} did not finish within {timeout:g}s") from None


async def outcomes(client: Client, delivery_ids: list[str], timeout: float) -> dict[str, DeliveryRecord]:
    records = await asyncio.gather(*(outcome(client, d, timeout) for d in delivery_ids))
    return dict(zip(delivery_ids, records, strict=True))
