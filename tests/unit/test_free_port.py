"""The ports tests and the bench hand to the processes they start (tests.conftest.free_port)."""

from __future__ import annotations

import socket

from tests.conftest import _ephemeral_low, free_port


def test_a_port_handed_out_is_free_and_outside_the_range_outgoing_connections_take() -> None:
    """A port from the kernel's ephemeral range was taken by an outgoing connection before the
    bench's API bound it (CI: "address already in use")."""
    ports = [free_port() for _ in range(200)]

    assert all(1024 <= port < _ephemeral_low() for port in ports)
    assert len(set(ports)) == len(ports)  # never the same one twice
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))  # still free
