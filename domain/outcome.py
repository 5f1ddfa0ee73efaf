"""Whether an endpoint's answer counts as delivered, and how a failure is explained."""

from __future__ import annotations

import json

from domain.status import reason_phrase

NOT_JSON = "HTTP response must be in JSON format. Please Retry"
# A custom header value stored before the API refused one that HTTP does not allow.
INVALID_HEADER_ERROR = (
    "Endpoint's custom header is not valid HTTP: its value begins or ends with a space or tab. Set it again"
)


def is_json_media_type(content_type: str | None) -> bool:
    """`application/json`, with parameters or not, and any `…+json` type."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _parses_as_json(body: bytes) -> bool:
    try:
        # NaN and Infinity are Python's extension, not JSON (RFC 8259): a body with them is not.
        json.loads(body, parse_constant=_not_json)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both derive from it
        return False
    except RecursionError:  # nested deeper than Python's stack: a few KiB of `[` will do
        return False
    return True


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def classify(status_code: int, content_type: str | None, body: bytes) -> str | None:
    """None when the response is a success, else the error a person reads in the log.

    The seed's rule: a 2xx answered in JSON, or a 204 (whose body is ignored).
    """
    if status_code == 204:
        return None
    if 200 <= status_code < 300:
        if is_json_media_type(content_type) and _parses_as_json(body):
            return None
        return NOT_JSON
    return f"HTTP response code is {status_code} ({reason_phrase(status_code)}), it must be 200"


def unreachable(cause: str) -> str:
    """The error of an attempt that got no response at all."""
    return f"Endpoint unreachable: {cause}"
