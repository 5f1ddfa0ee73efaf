"""`make run` leaves no process behind, however its launcher ends, and says so when it finds one.

The case from issue 17: Ctrl-C, the API stuck finishing a request (the launcher waits up to
20 s for it), and the launcher killed meanwhile. Its children, in their own sessions so that
Ctrl-C reaches only the launcher, used to live on: the next `make run` failed on their ports.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psutil
import pytest

from devstack.ports import is_taken
from tests.e2e.test_stack import stack_ports, start_launcher, until_healthy
from tests.waiting import eventually

# Generous for a loaded machine; the kernel's own signal takes milliseconds.
GONE_WITHIN = 15.0


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _named(children: list[psutil.Process]) -> dict[str, psutil.Process]:
    """The launcher's children by what they run (their command lines)."""
    marks = {
        "temporal": "start-dev",
        "worker": "worker.py",
        "api": "api.app:create_app",
        "codec": "api.codec_server:create_codec_app",
    }
    return {name: p for p in children for name, mark in marks.items() if mark in " ".join(p.cmdline())}


@contextmanager
def killed_at_the_end(processes: list[psutil.Process]) -> Iterator[None]:
    """A failing test must not leave what it checks for: SIGKILL each, by its PID."""
    try:
        yield
    finally:
        for process in processes:
            if _alive(process):
                process.kill()


async def _stuck_request(api_port: int) -> asyncio.StreamWriter:
    """A POST whose headers announce a body that never comes: the API is busy with it, and a
    graceful stop waits for it to finish."""
    _, writer = await asyncio.open_connection("127.0.0.1", api_port)
    writer.write(
        b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    await writer.drain()
    return writer


@pytest.mark.parametrize("end", ["SIGKILL", "second Ctrl-C"])
async def test_a_launcher_ended_while_the_api_is_busy_leaves_no_process_and_no_port(tmp_path, end):
    ports = stack_ports()
    launcher = await start_launcher(tmp_path, ports)
    children: list[psutil.Process] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['api']}", timeout=30) as api:
            await until_healthy(api, launcher)
        # Their own children too (a server the `temporal` CLI would start, say).
        children = psutil.Process(launcher.pid).children(recursive=True)
        named = _named(children)
        with killed_at_the_end(children):
            assert set(named) == {"temporal", "worker", "api", "codec"}, children
            stuck = await _stuck_request(ports["api"])

            async def api_listening_and_alive() -> tuple[bool, bool]:
                return is_taken(ports["api"]), _alive(named["api"])

            async def still_alive() -> list[psutil.Process]:
                return [p for p in children if _alive(p)]

            async def taken_ports() -> list[int]:
                return [port for port in ports.values() if is_taken(port)]

            launcher.send_signal(signal.SIGINT)
            # The API has stopped listening, not exiting: it waits for the request to finish.
            await eventually(
                api_listening_and_alive,
                lambda state: state == (False, True),
                30,
                "the API to stop listening and wait for its request",
            )
            if end == "SIGKILL":
                launcher.kill()
            else:
                launcher.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(launcher.wait(), GONE_WITHIN)

            left = await eventually(
                still_alive,
                lambda alive: not alive,
                GONE_WITHIN,
                "every process the launcher started to be gone",
            )
            taken = await eventually(
                taken_ports,
                lambda taken: not taken,
                GONE_WITHIN,
                "every port of the stack to be free",
            )
            stuck.close()
    finally:
        if launcher.returncode is None:
            launcher.kill()
            await launcher.wait()

    assert code == (-signal.SIGKILL if end == "SIGKILL" else 0)
    assert left == [] and taken == []


@pytest.fixture
def held_ports() -> Iterator[dict[str, int]]:
    """The stack's ports, its Temporal and API ones held by listeners of this test."""
    ports = stack_ports()
    listeners = []
    for name in ("temporal", "api"):
        listener = socket.create_server(("127.0.0.1", 0))
        ports[name] = listener.getsockname()[1]
        listeners.append(listener)
    try:
        yield ports
    finally:
        for listener in listeners:
            listener.close()


async def test_a_port_already_taken_is_named_with_its_holder_before_anything_starts(tmp_path, held_ports):
    data_dir = tmp_path / "data"
    launcher = await start_launcher(data_dir, held_ports, piped=True)
    out, err = await asyncio.wait_for(launcher.communicate(), 60)
    said = err.decode()

    assert launcher.returncode == 1
    me = os.getpid()
    assert f"port {held_ports['temporal']} (Temporal): held by pid {me} (" in said, said
    assert f"port {held_ports['api']} (API): held by pid {me} (" in said, said
    assert said.count(f"stop it with: kill {me}") == 2, said
    assert "Traceback" not in said + out.decode()
    # Nothing started: no state made, none of the free ports taken.
    assert not data_dir.exists()
    free = [port for name, port in held_ports.items() if name not in ("temporal", "api")]
    assert not [port for port in free if is_taken(port)]
