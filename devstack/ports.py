"""Before `make run` starts anything: are its ports free, and if not, who holds them."""

from __future__ import annotations

import errno
import socket

import psutil


def is_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could not listen on `host:port` now. SO_REUSEADDR, as the servers set
    it: a connection of a stopped server still closing (TIME_WAIT) does not count, a listener does."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def listener_pids(port: int) -> set[int]:
    """The processes listening on TCP `port` that this user may see (all of them for root);
    empty when the system will not tell (another user's process, macOS without root)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return set()
    return {
        c.pid
        for c in connections
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid is not None
    }


def _command_line(pid: int) -> str:
    try:
        words = psutil.Process(pid).cmdline()
    except psutil.Error:
        return "?"
    line = " ".join(" ".join(words).split()) or "?"  # one line, whatever newlines an argument holds
    return line if len(line) <= 100 else f"{line[:97]}..."


def _holder(port: int) -> str:
    pids = sorted(listener_pids(port))
    if not pids:
        return f"held by a process this user cannot see; find it with: sudo ss -ltnp 'sport = :{port}'"
    held_by = "; ".join(f"pid {pid} ({_command_line(pid)})" for pid in pids)
    return f"held by {held_by}; stop it with: kill {' '.join(map(str, pids))}"


def taken_ports_report(ports: dict[str, int]) -> str | None:
    """None when every named port is free, else a message that says which are taken, by
    which process and how to stop it, for a person to read."""
    lines = [f"  port {port} ({name}): {_holder(port)}" for name, port in ports.items() if is_taken(port)]
    if not lines:
        return None
    return "\n".join(
        [
            "make run cannot start: ports it needs are taken.",
            *lines,
            "A leftover of an earlier make run? Stop it as above (kill -9 if it is still there after 20 s),",
            "or start on other ports: .venv/bin/python -m devstack.stack --help",
        ]
    )
