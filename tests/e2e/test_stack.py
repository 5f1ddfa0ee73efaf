"""`make run`'s stack as a user drives it: start, use over HTTP, Ctrl-C, start again, nothing lost."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.integration.helpers import tracking_event
from tests.receiver import BackgroundServer, Receiver

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _listen_addresses(port: int) -> set[str]:
    """The local addresses TCP sockets listen on at `port`, as the kernel lists them (Linux)."""
    found = set()
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(str(ipaddress.ip_address(words if size == 16 else words[:4])))
    return found


@asynccontextmanager
async def running_stack(data_dir: Path, ports: dict[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    """The launcher `make run` calls, on free ports; stopped with SIGINT as Ctrl-C would."""
    flags = {"--data-dir": data_dir, "--temporal-port": ports["temporal"], "--ui-port": ports["ui"]}
    flags["--api-port"] = ports["api"]
    flags["--worker-metrics-port"] = ports["metrics"]
    args = [str(part) for pair in flags.items() for part in pair]
    stack = await asyncio.create_subprocess_exec(sys.executable, "-m", "devstack.stack", *args, cwd=ROOT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['api']}", timeout=30) as api:
            for _ in range(300):
                if stack.returncode is not None:
                    raise AssertionError(f"the stack exited with {stack.returncode} before serving")
                try:
                    if (await api.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("the API never became healthy")
            yield api
    finally:
        stack.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(stack.wait(), 60)
        assert code == 0
        assert not any(_listening(port) for port in ports.values()), "a process outlived Ctrl-C"


async def eventually_text(http: httpx.AsyncClient, url: str, needle: str) -> str:
    """The page once it mentions `needle` (metrics are exported periodically)."""
    text = ""
    for _ in range(50):
        text = (await http.get(url)).text
        if needle in text:
            break
        await asyncio.sleep(0.2)
    return text


async def test_make_run_stack_serves_stops_and_keeps_its_state(tmp_path):
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port(), "metrics": free_port()}
    receiver = Receiver()
    async with BackgroundServer(receiver, free_port()) as server:
        receiver.base_url = server.url
        url = receiver.url()

        async with running_stack(tmp_path, ports) as api:
            created = await api.post("/v1/endpoints", json={"url": url, "events": ["TRACKING_UPDATE"]})
            assert created.status_code == 201
            assert (await api.get("/docs")).status_code == 200
            await receiver.wait_for(url, 1, timeout=60)  # the first connection
            assert _listening(ports["ui"])
            # Everything make run starts listens on loopback only (the worker's metrics were on 0.0.0.0).
            listening = {name: _listen_addresses(port) for name, port in ports.items()}
            api_metrics = (await api.get("/metrics")).text
            async with httpx.AsyncClient() as http:
                worker_metrics = await eventually_text(
                    http, f"http://127.0.0.1:{ports['metrics']}/metrics", "webhook_deliveries"
                )

        async with running_stack(tmp_path, ports) as api:
            listed = (await api.get("/v1/endpoints")).json()
            accepted = await api.post("/v1/events", json=tracking_event())
            [second] = (await receiver.wait_for(url, 2, timeout=60))[1:]

    assert [e["id"] for e in listed] == [created.json()["id"]]
    assert accepted.status_code == 202
    assert second.headers["webhook-id"] == accepted.json()["deliveries"][0]["id"]
    assert (tmp_path / "temporal.db").exists()
    assert listening == {name: {"127.0.0.1"} for name in ports}, listening
    assert 'webhooks_api_requests_total{method="POST",route="/v1/endpoints",status="201"}' in api_metrics
    assert "webhook_deliveries_total{" in worker_metrics and 'result="success"' in worker_metrics
    assert "webhook_http_latency" in worker_metrics and "webhook_attempts_total" in worker_metrics
