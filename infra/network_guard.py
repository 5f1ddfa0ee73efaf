"""Keeps webhooks off private networks: at registration, and at each connection.

The check at send time looks at the very address the connection is made to,
after DNS, so a name that resolved to a public address when the endpoint was
registered cannot be rebound to an internal one later.
"""

from __future__ import annotations

import asyncio
import socket
import typing
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

from domain.network import IPAddress, forbidden_reason, literal_address

# host, port -> the addresses it resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]


class ForbiddenDestination(Exception):
    """The endpoint's host is, or resolves to, an address webhooks may not reach.

    Its text names the host and the address, for the delivery log of the endpoint's own
    attempts; `refusal` says why without either, for answers to input, which never echo it."""

    def __init__(self, detail: str, refusal: str = "is not a public address") -> None:
        # A default, so that it rebuilds from its args alone (copy, pickle restore the rest).
        super().__init__(detail)
        self.refusal = refusal


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _refuse(host: str, address: IPAddress) -> None:
    reason = forbidden_reason(address)
    if reason is None:
        return
    unnamed = forbidden_reason(address, name_embedded=False)
    if host == str(address):
        raise ForbiddenDestination(f"{host} is {reason}", f"is {unnamed}")
    raise ForbiddenDestination(f"{host} resolves to {address}, which is {reason}", f"resolves to {unnamed}")


async def check_destination(host: str, port: int, resolve: Resolver = system_resolver) -> list[str]:
    """The host's addresses, all of them public; raises ForbiddenDestination otherwise.

    A name that does not resolve yet is let through: the send-time check guards it.
    """
    literal = literal_address(host)
    if literal is not None:
        _refuse(host, literal)
        return [str(literal)]
    try:
        addresses = await resolve(host, port)
    except OSError:
        return []
    for address in addresses:
        parsed = literal_address(address)
        if parsed is None:
            detail = f"{host} resolves to {address!r}, which is not an address"
            raise ForbiddenDestination(detail, "resolves to something that is not an IP address")
        _refuse(host, parsed)
    return addresses


async def check_url(url: str, resolve: Resolver = system_resolver) -> None:
    """Checks the host the worker will connect to: httpx's IDNA 2008 spelling of a name
    (`faß.de` is `xn--fa-hia.de`), not the Unicode one, which the system resolver would
    encode by IDNA 2003's rules (`fass.de`), or refuse."""
    target = httpx.URL(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    await check_destination(target.raw_host.decode("ascii"), port, resolve)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address (TLS still verifies the name)."""

    def __init__(self, resolve: Resolver = system_resolver) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolve = resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await check_destination(host, port, self._resolve)
        if not addresses:
            raise httpcore.ConnectError(f"DNS lookup failed for {host}")
        return await self._inner.connect_tcp(addresses[0], port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise ForbiddenDestination("webhooks do not go to unix sockets", "is a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
