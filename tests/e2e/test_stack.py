"""`make run`'s stack as a user drives it: start, use over HTTP, Ctrl-C, start again, nothing lost."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from playwright.async_api import async_playwright, expect

from domain.ids import registry_workflow_id
from tests.conftest import free_port
from tests.integration.helpers import codec_decode, decoded_text, raw_query, tracking_event
from tests.receiver import BackgroundServer, Receiver
from tests.ui.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stack_ports() -> dict[str, int]:
    return {name: free_port() for name in ("temporal", "ui", "api", "codec", "metrics")}


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


async def start_launcher(
    data_dir: Path, ports: dict[str, int], env: dict[str, str] | None = None, piped: bool = False
) -> asyncio.subprocess.Process:
    """`python -m devstack.stack`, as `make run` calls it, on `ports`; `piped`: its output to read."""
    flags = {"--data-dir": data_dir, "--temporal-port": ports["temporal"], "--ui-port": ports["ui"]}
    flags["--api-port"] = ports["api"]
    flags["--codec-port"] = ports["codec"]
    flags["--worker-metrics-port"] = ports["metrics"]
    args = [str(part) for pair in flags.items() for part in pair]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devstack.stack",
        *args,
        cwd=ROOT,
        env=os.environ | (env or {}),
        stdout=asyncio.subprocess.PIPE if piped else None,
        stderr=asyncio.subprocess.PIPE if piped else None,
    )


async def until_healthy(api: httpx.AsyncClient, stack: asyncio.subprocess.Process) -> None:
    for _ in range(300):
        if stack.returncode is not None:
            raise AssertionError(f"the stack exited with {stack.returncode} before serving")
        try:
            if (await api.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("the API never became healthy")


@asynccontextmanager
async def running_stack(
    data_dir: Path, ports: dict[str, int], env: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The launcher `make run` calls, on free ports; stopped with SIGINT as Ctrl-C would."""
    stack = await start_launcher(data_dir, ports, env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['api']}", timeout=30, headers=headers) as api:
            await until_healthy(api, stack)
            yield api
    finally:
        stack.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(stack.wait(), 60)
        assert code == 0
        assert not any(_listening(port) for port in ports.values()), "a process outlived Ctrl-C"


async def worker_metrics_page(http: httpx.AsyncClient, url: str) -> str:
    """The worker's metrics once they show a delivery that succeeded (they are exported periodically)."""

    async def page() -> str:
        return (await http.get(url)).text

    def shows_a_success(text: str) -> bool:
        return any(
            line.startswith("webhook_deliveries_total{") and 'result="success"' in line for line in text.splitlines()
        )

    return await eventually(page, shows_a_success, what=f'a webhook_deliveries_total{{result="success"}} at {url}')


async def test_make_run_stack_serves_stops_and_keeps_its_state(tmp_path):
    ports = stack_ports()
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
                worker_metrics = await worker_metrics_page(http, f"http://127.0.0.1:{ports['metrics']}/metrics")

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


async def test_with_api_auth_on_the_web_ui_decodes_through_the_operators_codec(tmp_path):
    ports = stack_ports()
    merchant = {"Authorization": "Bearer tok-merchant-e2e"}
    ui_origin = f"http://localhost:{ports['ui']}"
    env = {"WEBHOOKS_API_TOKEN": "tok-merchant-e2e"}
    async with running_stack(tmp_path, ports, env, merchant) as api:
        created = await api.post("/v1/endpoints", json={"url": "http://127.0.0.1:9/hook", "events": ["ORDER_ERROR"]})
        assert created.status_code == 201, created.text
        # What the Web UI in an operator's browser does: read its settings, then decode
        # what it shows through the codec endpoint they name, with no credential.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['ui']}") as ui:
            codec_settings = (await ui.get("/api/v1/settings")).json()["Codec"]
        answer = await raw_query(f"127.0.0.1:{ports['temporal']}", registry_workflow_id("default"), "endpoints")
        async with httpx.AsyncClient(base_url=codec_settings["Endpoint"].removesuffix("/codec")) as codec:
            decoded = await codec_decode(codec, answer, {"Origin": ui_origin})
        on_the_api = await codec_decode(api, answer)
        # And in a real browser: the registry's page shows its input decoded.
        codec_answers: list[int] = []
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("response", lambda r: codec_answers.append(r.status) if "/codec/decode" in r.url else None)
            await page.goto(f"{ui_origin}/namespaces/default/workflows/endpoints%2Fdefault")
            await expect(page.locator("body")).to_contain_text('"account": "default"', timeout=30_000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=ARTIFACTS / "web-ui-decoded-with-api-auth.png")
            shown = await page.inner_text("body")
            await browser.close()

    assert codec_settings["Endpoint"] == f"http://localhost:{ports['codec']}/codec"
    assert not codec_settings["PassAccessToken"] and not codec_settings["IncludeCredentials"]
    assert created.json()["id"] in decoded_text(decoded)
    assert decoded.headers["access-control-allow-origin"] == ui_origin
    assert on_the_api.status_code == 404  # merchants' port: no codec, whatever the token
    assert codec_answers and set(codec_answers) == {200}
    assert "could not connect" not in shown
