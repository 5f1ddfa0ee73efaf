"""Which destinations an endpoint may point at: public addresses only, unless allowed."""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 forms whose last 32 bits are an IPv4 address that a host, a translator or a tunnel reaches:
# IPv4-compatible (deprecated, RFC 4291), SIIT's IPv4-translated (RFC 2765) and well-known NAT64 (RFC 6052).
_IPV4_IN_LOW_BITS = (
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
    ipaddress.IPv6Network("64:ff9b::/96"),
)
# `::` and `::1` lie in the IPv4-compatible range but are IPv6's own unspecified and loopback addresses.
_UNSPECIFIED_OR_LOOPBACK = (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1"))
# Ranges refused whatever they embed: local-use NAT64 (RFC 8215) translates into the operator's own
# IPv4 space, and site-local (deprecated, RFC 3879) is a private network under another name.
_LOCAL_RANGES = (
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (ipaddress.IPv6Network("fec0::/10"), "a site-local address"),
)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without DNS, in any spelling a resolver accepts
    (`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`, `::ffff:127.0.0.1`)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host:
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and reaches through: mapped, compatible,
    translated (SIIT, NAT64), 6to4's, and Teredo's server and client."""
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if any(address in network for network in _IPV4_IN_LOW_BITS) and address not in _UNSPECIFIED_OR_LOOPBACK:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [v4 for v4 in found if v4 is not None]


def forbidden_reason(address: IPAddress, *, name_embedded: bool = True) -> str | None:
    """Why a webhook may not go there (loopback, private, …), or None for a public address.
    The IPv4 address an IPv6 one carries is named unless `name_embedded` is false."""
    if isinstance(address, ipaddress.IPv6Address):
        for v4 in embedded_ipv4(address):
            reason = forbidden_reason(v4)
            if reason is not None:
                return f"{reason} ({v4} embedded)" if name_embedded else f"{reason} embedded in an IPv6 one"
        for network, reason in _LOCAL_RANGES:
            if address in network:
                return reason
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for hit, reason in checks if hit), None)
