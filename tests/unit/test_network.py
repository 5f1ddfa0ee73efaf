"""The SSRF table: every spelling of a private destination is refused, public ones pass."""

from __future__ import annotations

import pytest

from domain.network import forbidden_reason, literal_address
from infra.network_guard import ForbiddenDestination, check_destination, check_url

FORBIDDEN_HOSTS = {
    "127.0.0.1": "loopback",
    "127.1": "loopback",  # short form
    "2130706433": "loopback",  # decimal
    "0x7f000001": "loopback",  # hex
    "0x7f.0.0.1": "loopback",
    "0177.0.0.1": "loopback",  # octal
    "10.0.0.8": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "224.0.0.1": "multicast",
    "0.0.0.0": "unspecified",
    "0": "unspecified",
    "100.64.0.1": "not a public address",  # carrier-grade NAT
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped
    "::ffff:169.254.169.254": "link-local",
    "::ffff:7f00:1": "loopback",
    "2002:7f00:1::": "loopback",  # 6to4 wrapping 127.0.0.1
}


@pytest.mark.parametrize(("host", "reason"), FORBIDDEN_HOSTS.items())
def test_private_destinations_in_every_spelling_are_refused(host, reason):
    address = literal_address(host)

    assert address is not None
    assert reason in (forbidden_reason(address) or "")


@pytest.mark.parametrize("host", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses_pass(host):
    address = literal_address(host)

    assert address is not None and forbidden_reason(address) is None


def test_names_are_not_literals():
    assert literal_address("shop.example.com") is None
    assert literal_address("localhost") is None


def _resolver_of(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


async def test_a_name_that_resolves_to_a_private_address_is_refused_and_named():
    resolve = _resolver_of({"internal.shop": ["93.184.216.34", "10.1.2.3"], "shop.test": ["93.184.216.34"]})

    with pytest.raises(ForbiddenDestination, match=r"internal.shop resolves to 10.1.2.3, which is a private address"):
        await check_url("https://internal.shop/hook", resolve)
    assert await check_destination("shop.test", 443, resolve) == ["93.184.216.34"]


async def test_literals_are_judged_without_dns_and_unknown_names_wait_for_send_time():
    resolve = _resolver_of({})

    with pytest.raises(ForbiddenDestination, match="loopback"):
        await check_url("http://[::ffff:127.0.0.1]:8080/x", resolve)
    with pytest.raises(ForbiddenDestination, match="link-local"):
        await check_url("http://169.254.169.254/latest/meta-data/", resolve)
    assert await check_destination("not-yet.example", 443, resolve) == []
