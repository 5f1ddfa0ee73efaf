"""The SSRF table: every spelling of a private destination is refused, public ones pass."""

from __future__ import annotations

import ipaddress
import pickle
import re

import pytest

from domain.network import embedded_ipv4, forbidden_reason, literal_address
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


# Every IPv6 form that embeds or reaches IPv4 private or loopback space (issue 13), and site-local.
IPV6_FORMS = {
    "::127.0.0.1": "loopback",  # IPv4-compatible (deprecated)
    "::7f00:1": "loopback",  # the same, in hex
    "::10.0.0.1": "private",
    "::ffff:10.1.2.3": "private",  # IPv4-mapped
    "::ffff:0:127.0.0.1": "loopback",  # SIIT, IPv4-translated
    "::ffff:0:7f00:1": "loopback",
    "::ffff:0:169.254.169.254": "link-local",
    "64:ff9b::127.0.0.1": "loopback",  # NAT64, well-known prefix
    "64:ff9b::7f00:1": "loopback",
    "64:ff9b::a9fe:a9fe": "link-local",  # NAT64 of the cloud metadata address
    "64:ff9b::c0a8:101": "private",  # NAT64 of 192.168.1.1
    "64:ff9b:1::8.8.8.8": "local-use NAT64",  # local-use prefix: the operator's own IPv4, refused whole
    "64:ff9b:1:ffff::7f00:1": "local-use NAT64",
    "2002:7f00:1::": "loopback",  # 6to4 of 127.0.0.1
    "2002:a00:1::1": "private",  # 6to4 of 10.0.0.1
    "2002:c0a8:101::": "private",  # 6to4 of 192.168.1.1
    "2001:0:7f00:1::": "loopback",  # Teredo, server 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe": "private",  # Teredo, client 10.0.0.1 (obfuscated)
    "2001::1": "unspecified",  # Teredo, server 0.0.0.0
    "fec0::1": "site-local",  # deprecated site-local
    "fec0:1::a": "site-local",
    "feff::1": "site-local",
}


@pytest.mark.parametrize(("host", "reason"), IPV6_FORMS.items())
async def test_every_ipv6_form_of_private_space_is_refused_as_a_url_literal(host, reason):
    """At registration: the URL's own host, judged without DNS."""
    with pytest.raises(ForbiddenDestination, match=reason):
        await check_url(f"http://[{host}]:8080/hook", _resolver_of({}))


@pytest.mark.parametrize(("host", "reason"), IPV6_FORMS.items())
async def test_every_ipv6_form_of_private_space_is_refused_as_a_resolved_address(host, reason):
    """At registration and at send time: a public-looking name that resolves to it."""
    resolve = _resolver_of({"shop.example": ["93.184.216.34", host]})
    shown = re.escape(str(literal_address(host)))
    with pytest.raises(ForbiddenDestination, match=f"shop.example resolves to {shown}, which is .*{reason}"):
        await check_destination("shop.example", 443, resolve)


@pytest.mark.parametrize(
    "host",
    [
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8: a public IPv4 through the translator
        "2002:808:808::1",  # 6to4 of 8.8.8.8
        "::ffff:0:808:808",  # SIIT of 8.8.8.8
        "2001:4860:4860::8888",
    ],
)
def test_ipv6_forms_of_public_ipv4_pass(host):
    address = literal_address(host)

    assert address is not None and forbidden_reason(address) is None


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


@pytest.mark.parametrize(("host", "reason"), [*IPV6_FORMS.items(), ("10.0.0.1", "private"), ("127.1", "loopback")])
async def test_the_refusal_answered_to_input_names_neither_the_host_nor_its_address(host, reason):
    """API answers never echo a rejected value: `refusal` says why without what was refused."""
    address = literal_address(host)
    assert address is not None
    carried = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else []
    named = {host, "shop.example", str(address), *(str(v4) for v4 in carried)}
    url = f"http://[{host}]:8080/hook" if ":" in host else f"http://{host}/hook"
    resolve = _resolver_of({"shop.example": ["93.184.216.34", host]})

    for check in (check_url(url, resolve), check_destination("shop.example", 443, resolve)):
        with pytest.raises(ForbiddenDestination) as refused:
            await check
        assert reason in refused.value.refusal
        assert not [value for value in named if value in refused.value.refusal]


def test_a_refusal_rebuilt_from_its_args_still_names_nothing():
    """Exceptions are rebuilt from their args when copied or pickled (then their attributes
    are restored): one whose constructor needs more than its args fails to rebuild."""
    refused = ForbiddenDestination("10.0.0.1 is a private address", "is a private address")

    rebuilt = pickle.loads(pickle.dumps(refused))

    assert str(rebuilt) == "10.0.0.1 is a private address" and rebuilt.refusal == "is a private address"


@pytest.mark.parametrize(
    ("url", "asked"),
    [
        ("https://faß.de/hook", "xn--fa-hia.de"),  # IDNA 2003 would ask for fass.de, another host
        ("https://" + "ß" * 40 + ".example/hook", "xn--zca" + "a" * 39 + ".example"),  # too long in IDNA 2003
        ("https://Shop.Example/hook", "shop.example"),
    ],
)
async def test_a_name_is_resolved_as_the_worker_will_connect_to_it(url, asked):
    """The registration check resolves httpx's spelling of the host: the system resolver's own
    IDNA 2003 encoding names another host, or raises UnicodeError (a 500 at the API)."""
    seen: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        seen.append(host)
        return ["93.184.216.34"]

    await check_url(url, resolve)

    assert seen == [asked]
