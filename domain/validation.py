"""Field rules shared by endpoint configuration and events."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

import idna
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

MAX_URL_LENGTH = 2048
# RFC 1035: a DNS name is at most 253 characters (without the root's dot), each label 1 to 63.
MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63
# Host names as resolvers take them: letters, digits, hyphens, and the underscores real names carry.
_LABEL = re.compile(r"^[A-Za-z0-9_-]+$")
# Four dotted numbers are an IPv4 address to httpx, which refuses one that is not valid (`999.1.1.1`, `0177.0.0.1`).
_DOTTED_QUAD = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
# A label that is a number in the WHATWG URL standard's IPv4 parser: decimal, or 0x hexadecimal.
_NUMBER = re.compile(r"^(?:[0-9]+|0[xX][0-9A-Fa-f]*)$")

# RFC 9110 token: the characters a header field name may contain.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Visible ASCII, space and tab; CR/LF would let a value inject headers.
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]*$")
# Field patterns the API explains in words (domain/plain_words.py).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
NO_COLON_OR_CONTROL_CHARACTERS = r"^[^:\x00-\x1f\x7f]*$"


def check_http_url(value: str) -> str:
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an absolute http or https URL")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        # urllib's message quotes the port; it could be a password typed in the wrong place.
        raise ValueError("must have a port that is a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials; use the auth field instead")
    return value


def check_endpoint_url(value: str) -> str:
    """An http(s) URL whose host a resolver takes: what an endpoint may be registered at."""
    check_http_url(value)
    parts = urlsplit(value)
    bracketed = "[" in parts.netloc
    # urllib reads the host between the brackets and drops what follows ([::1]junk, [fe80::1]%25eth0),
    # which httpx refuses at every attempt: only a port may follow.
    if bracketed and not re.fullmatch(r"(:[0-9]*)?", parts.netloc.partition("]")[2]):
        raise ValueError("must have an IPv6 host followed by nothing but its port")
    check_host(parts.hostname or "", bracketed=bracketed)
    if parts.port == 0:  # no connection can be made to it
        raise ValueError("must have a port that is a number from 1 to 65535")
    return value


def check_host(host: str, *, bracketed: bool = False) -> None:
    """Raises ValueError unless `host` (a URL's, without brackets) is an IP literal or a valid DNS name.

    Resolvers refuse the rest (a label over 63 characters, an empty one as in `a..b`, a lone
    surrogate) with errors of their own, at registration or at each attempt: refuse them here, once.
    """
    if bracketed or ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("must have a host that is a valid IPv6 address between brackets") from None
        if address.scope_id is not None:  # httpx connects to `fe80::1%25eth0` undecoded: never found
            raise ValueError("must have an IPv6 host without a zone id (%25...)")
        return
    name = host.removesuffix(".")  # a trailing dot names the DNS root: the same host
    if _DOTTED_QUAD.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError("must have a host that is a valid IPv4 address (0-255 each, no leading zeros)") from None
        return
    try:
        ascii_name = name if name.isascii() else idna.encode(name).decode("ascii")
    except UnicodeError:  # idna.IDNAError is one
        raise ValueError("must have a host that is a valid internationalized domain name") from None
    if len(ascii_name) > MAX_HOST_LENGTH:
        raise ValueError(f"must have a host of at most {MAX_HOST_LENGTH} characters")
    labels = ascii_name.split(".")
    for label in labels:
        if not label:
            raise ValueError("must have a host without empty labels (as in a..b)")
        if len(label) > MAX_LABEL_LENGTH:
            raise ValueError(f"must have a host whose labels are at most {MAX_LABEL_LENGTH} characters")
        if not _LABEL.fullmatch(label):
            raise ValueError("must have a host of letters, digits, hyphens, underscores and dots")
        if label.startswith("-") or label.endswith("-"):
            raise ValueError("must have a host whose labels do not begin or end with a hyphen")
    # A name ending in a number is an IPv4 address to resolvers and browsers (WHATWG URL):
    # 2130706433, 1.2.3 and 0x7f.1 all reach 127.0.0.1. Only four dotted numbers are taken.
    if _NUMBER.fullmatch(labels[-1]):
        raise ValueError(
            "must have a host that is a valid IPv4 address (four numbers) or a name not ending in a number"
        )


def check_header_name(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError("must be a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)")
    return value


def check_header_value(value: str) -> str:
    if not _HEADER_VALUE.fullmatch(value):
        raise ValueError("must be printable ASCII without line breaks")
    return value


def check_printable(value: str) -> str:
    """No control characters (a NUL cuts a visibility query short) and no lone surrogates."""
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    return value


# Characters that reorder the text around them on screen ("Trojan Source", CVE-2021-42574):
# in a description they could make a dashboard show one thing where the text says another.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_description(value: str) -> str:
    """Free text a person reads: lines and tabs, but no other control character (a NUL, an
    escape sequence for a terminal) and no character that reorders what is shown."""
    if any(ch not in "\t\n\r\x85" and unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters other than tabs and line breaks")
    if not _BIDI_CONTROLS.isdisjoint(value):
        raise ValueError("must not contain characters that change the direction of text")
    return value


def utc_instant(value: datetime) -> datetime:
    """The instant in UTC; refuses one UTC cannot hold, such as 0001-01-01T00:00:00+23:59, which
    is in year 0. (The API's instants state their zone: UtcInstant. A time without one, from a
    page token this API wrote, is UTC.)"""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be an instant between years 1 and 9999 in UTC") from None


def not_a_number(value: object) -> object:
    """pydantic reads a number, or a string of one, as Unix time; the API takes ISO 8601 only."""
    if isinstance(value, int | float) or (isinstance(value, str) and _looks_numeric(value)):
        raise ValueError("must be a date and time in ISO 8601, not a number")
    return value


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_within_log(since: datetime, now: datetime, retention: timedelta | None) -> None:
    """Raises ValueError unless `since` lies in what the log holds: not in the future, and not
    before the namespace's retention (None: the server did not say)."""
    if since > now:
        raise ValueError("must not be in the future")
    check_within_retention(since, now, retention)


def check_within_retention(moment: datetime, now: datetime, retention: timedelta | None) -> None:
    """Raises ValueError when `moment` is older than anything the log keeps."""
    if retention is not None and moment < now - retention:
        days = retention / timedelta(days=1)
        raise ValueError(f"must be within the log's retention: at most {days:g} days ago")


AbsoluteHttpUrl = Annotated[str, AfterValidator(check_http_url)]
EndpointUrl = Annotated[str, AfterValidator(check_endpoint_url)]
HeaderName = Annotated[str, AfterValidator(check_header_name)]
HeaderValue = Annotated[str, AfterValidator(check_header_value)]
PrintableText = Annotated[str, AfterValidator(check_printable)]
Description = Annotated[str, Field(max_length=1024), AfterValidator(check_description)]


def query_flag(value: object) -> object:
    """A query's true or false, as the API writes them: not pydantic's `yes`, `on`, `1` or `t`."""
    if isinstance(value, str) and value not in ("true", "false"):
        raise ValueError("must be true or false")
    return value


def query_whole_number(value: object) -> object:
    """A query's whole number in digits: not pydantic's `200.0`."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number")
    return value


# A time without a zone is not an instant (CONTRACT §5): 2026-11-30T15:00:00 is refused, not taken as UTC.
UtcInstant = Annotated[AwareDatetime, BeforeValidator(not_a_number), AfterValidator(utc_instant)]
QueryFlag = Annotated[bool, BeforeValidator(query_flag)]
QueryWholeNumber = Annotated[int, BeforeValidator(query_whole_number)]
