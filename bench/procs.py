"""The benchmark's processes, each started and stopped by its own PID, and what /proc says of them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from pydantic import SecretStr
from temporalio.client import Client

from devstack.devserver import start_dev_server, wait_until_serving
from devstack.lifetime import die_with_parent
from infra.codec import new_key
from infra.temporal import connect
from settings import Settings
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
_STOP_TIMEOUT = 20.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy so far, all cores (/proc/stat, first line)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / _CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Resident memory now (/proc/<pid>/statm: resident pages)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_KIB


def peak_rss_kib(pid: int) -> int:
    """VmHWM: the peak resident memory since start, or since `reset_peak_rss`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> None:
    """Resets VmHWM to the current RSS (Linux >= 4.0); harmless where it is refused."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL if it has not exited within the timeout."""
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(_STOP_TIMEOUT)


@dataclass
class Usage:
    """CPU seconds used and peak RSS of each process over one phase."""

    cpu_s: dict[str, float]
    peak_rss_mib: dict[str, float]
    wall_s: float
    machine_busy_s: float

    @property
    def foreign_cpu_s(self) -> float:
        """Busy CPU of the machine not spent by the benchmark's processes: other work contaminating it."""
        return max(0.0, self.machine_busy_s - sum(self.cpu_s.values()))


class UsageMeter:
    """Snapshots CPU time at the start and end of a phase; samples RSS in between (and reads VmHWM)."""

    def __init__(self, procs: Callable[[], dict[str, int]], interval: float = 0.25) -> None:
        self._procs = procs
        self._interval = interval
        self._cpu0: dict[str, float] = {}
        self._peak: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._t0 = 0.0
        self._busy0 = 0.0

    async def __aenter__(self) -> UsageMeter:
        pids = self._procs()
        for pid in [*pids.values(), os.getpid()]:
            reset_peak_rss(pid)
        self._cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self._cpu0["bench"] = time.process_time()
        self._busy0 = machine_busy_seconds()
        self._peak = {name: rss_kib(pid) for name, pid in pids.items()}
        self._t0 = time.monotonic()
        self._task = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for name, pid in self._procs().items():
                with contextlib.suppress(OSError):
                    self._peak[name] = max(self._peak.get(name, 0), rss_kib(pid))

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            # asyncio.wait, not `await` under suppress(CancelledError): that would also swallow
            # a cancellation of the run itself (SIGTERM) arriving during this wait, and the run
            # went on to its next phase.
            await asyncio.wait([self._task])

    def read(self) -> Usage:
        """Usage from the start of the phase until now."""
        pids = self._procs()
        cpu = {name: cpu_seconds(pid) - self._cpu0.get(name, 0.0) for name, pid in pids.items()}
        cpu["bench"] = time.process_time() - self._cpu0["bench"]
        peak = {name: max(self._peak.get(name, 0), peak_rss_kib(pid)) / 1024 for name, pid in pids.items()}
        peak["bench"] = max(self._peak.get("bench", 0), peak_rss_kib(os.getpid())) / 1024
        return Usage(cpu, peak, time.monotonic() - self._t0, machine_busy_seconds() - self._busy0)


@dataclass
class Stack:
    """The service as `make run` runs it (dev server on a SQLite file with WAL, worker, API),
    plus the receiver and the floor worker, all on free ports of 127.0.0.1."""

    workdir: Path
    worker_env: dict[str, str] = field(default_factory=dict)
    key: str = field(default_factory=new_key)
    secrets_key: str = field(default_factory=new_key)
    temporal_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    receiver_port: int = field(default_factory=free_port)
    procs: dict[str, Proc] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    @property
    def task_queue(self) -> str:
        return "webhooks"

    def settings(self) -> Settings:
        return Settings(
            temporal_address=self.address,
            task_queue=self.task_queue,
            encryption_key=SecretStr(self.key),
            secrets_key=SecretStr(self.secrets_key),
            allow_private_networks=True,
            api_token=None,
            log_format="text",
        )

    def env(self, **extra: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
        return inherited | {
            "WEBHOOKS_TEMPORAL_ADDRESS": self.address,
            "WEBHOOKS_TASK_QUEUE": self.task_queue,
            "WEBHOOKS_ENCRYPTION_KEY": self.key,
            "WEBHOOKS_SECRETS_KEY": self.secrets_key,
            "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
            "WEBHOOKS_API_PORT": str(self.api_port),
            "WEBHOOKS_LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items() if p.running}

    def _log(self, name: str) -> tuple[IO[bytes], Path]:
        path = self.workdir / f"{name}.log"
        log = path.open("ab")
        self._logs.append(log)
        return log, path

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        log, path = self._log(name)
        # die_with_parent: a bench killed with SIGKILL, which no handler sees, takes them along.
        popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        self.procs[name] = Proc(name, popen, path)
        return self.procs[name]

    async def start(self) -> Client:
        log, path = self._log("server")
        server = start_dev_server(self.temporal_port, db_file=self.workdir / "temporal.db", log=log)
        self.procs["server"] = Proc("server", server, path)
        await wait_until_serving(self.address, server, timeout=60)
        self._spawn("receiver", ["-m", "bench.receiver", str(self.receiver_port)], self.env())
        self.start_worker()
        metrics = {"WEBHOOKS_WORKER_METRICS_PORT": str(free_port())}
        self._spawn("floor_worker", ["-m", "bench.floor_worker"], self.env(**metrics))
        await self.start_api("api", self.api_port)
        await self._until_ok(f"{self.receiver_url}/_count", "receiver")
        return await connect(self.settings())

    async def start_api(self, name: str, port: int, **extra: str) -> str:
        """The API (uvicorn, as `make run`) with `extra` variables; returns its URL once healthy."""
        api = ["-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1", "--port", str(port)]
        self._spawn(name, api, self.env(**extra))
        url = f"http://127.0.0.1:{port}"
        await self._until_ok(f"{url}/healthz", name)
        return url

    def start_worker(self, name: str = "worker", **extra: str) -> Proc:
        """`python worker.py` with make run's settings (metrics on), plus `extra` variables."""
        env = self.env(WEBHOOKS_WORKER_METRICS_PORT=str(free_port()), **(self.worker_env | extra))
        return self._spawn(name, ["worker.py"], env)

    def workers(self) -> list[str]:
        """The names of the service's workers running now (not the floor worker)."""
        return [name for name, p in self.procs.items() if name.rstrip("0123456789") == "worker" and p.running]

    async def restart_worker(self, **extra: str) -> None:
        self.procs["worker"].stop()
        self.start_worker("worker", **extra)

    async def _until_ok(self, url: str, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(int(timeout / 0.2) + 1):
                if not self.procs[name].running:
                    raise RuntimeError(f"{name} exited:\n{self.procs[name].log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{name} not ready at {url} after {timeout:g}s")

    def check_alive(self) -> None:
        dead = [p for p in self.procs.values() if not p.running]
        if dead:
            raise RuntimeError(f"{dead[0].name} exited with {dead[0].popen.returncode}:\n{dead[0].log_tail()}")

    def stop(self) -> None:
        """APIs first, then the workers and the receiver, the server last (workers shut down
        gracefully against it); each by its PID. Safe to call again, and on a half-started stack."""
        order = ["api", "worker", "floor_worker", "receiver", "server"]

        def rank(name: str) -> int:
            kind = name.rstrip("0123456789")
            return order.index(kind) if kind in order else -1

        for name in sorted(self.procs, key=rank):
            self.procs[name].stop()
        for log in self._logs:
            log.close()
        self._logs.clear()
