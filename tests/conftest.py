"""Fixtures: a real Temporal dev server, a real worker, the real API over HTTP, real receivers.

Everything listens on free ports of 127.0.0.1, so the suite runs beside a `make run` stack.
"""

from __future__ import annotations

import os
import random
import socket
import sys
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.client import Client

from api.app import create_app
from devstack.devserver import start_dev_server, wait_until_serving
from infra.codec import new_key
from infra.temporal import connect
from settings import Settings
from tests.receiver import BackgroundServer, Receiver
from worker import delivery_worker

# Ports handed out below the kernel's ephemeral range. A port the kernel picked (bind to 0) is
# one it also gives outgoing connections: between the pick and the bind of the process it was
# handed to, one took it (CI: the bench's API, started after its server and workers, exited
# with "address already in use").
_PORTS_BELOW_EPHEMERAL = 12_000
_handed_out: set[int] = set()
_pick = random.SystemRandom()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A port of 127.0.0.1 free now, that no outgoing connection will take before it is bound."""
    high = _ephemeral_low()
    low = max(1024, high - _PORTS_BELOW_EPHEMERAL)
    while True:
        port = _pick.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


@pytest_asyncio.fixture(scope="session")
async def temporal_address() -> AsyncIterator[str]:
    port = free_port()
    server = start_dev_server(port)
    address = f"127.0.0.1:{port}"
    try:
        await wait_until_serving(address, server)
        yield address
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture(scope="session")
def settings(temporal_address: str) -> Settings:
    # Short retry delays keep retry tests fast; the rules are the same as in production.
    return Settings(
        temporal_address=temporal_address,
        task_queue=f"tests-{uuid.uuid4().hex[:8]}",
        retry_initial_interval=0.05,
        retry_backoff=1.0,
        retry_max_interval=5.0,
        http_timeout=2.0,
        api_token=None,
        encryption_key=SecretStr(new_key()),
        secrets_key=SecretStr(new_key()),
        # The receivers of the tests live on 127.0.0.1.
        allow_private_networks=True,
        log_format="text",  # leave pytest's log capture in place
    )


@pytest_asyncio.fixture(scope="session")
async def client(settings: Settings) -> Client:
    return await connect(settings)


@pytest_asyncio.fixture(scope="session")
async def worker(client: Client, settings: Settings) -> AsyncIterator[None]:
    async with delivery_worker(client, settings) as running, running:
        yield


@pytest_asyncio.fixture(scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    app = Receiver()
    async with BackgroundServer(app, free_port()) as server:
        app.base_url = server.url
        yield app


@pytest_asyncio.fixture(scope="session")
async def api(settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    """The real FastAPI app served over HTTP, with a worker running behind it."""
    async with (
        BackgroundServer(create_app(settings), free_port()) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
    ):
        yield http


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # The Temporal SDK's runtime can segfault at interpreter exit (sdk-python#300);
    # leave with pytest's own verdict instead of letting that become the exit code.
    if _EXIT_STATUS in config.stash:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash[_EXIT_STATUS])


_EXIT_STATUS = pytest.StashKey[int]()
