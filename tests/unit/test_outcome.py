"""Whether an endpoint's answer is a success, and the error a person reads when it is not (CONTRACT §4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.outcome import classify, unreachable
from domain.status import REASON_PHRASES, status_text

NOT_JSON = "HTTP response must be in JSON format. Please Retry"

# The seed's table of statuses, copied as the help page writes them.
SEED_TABLE = """
100 Continue
101 Switching Protocols
102 Processing
200 OK
201 Created
202 Accepted
203 Non-authoritative Information
204 No Content
205 Reset Content
206 Partial Content
207 Multi-Status
208 Already Reported
226 IM Used
300 Multiple Choices
301 Moved Permanently
302 Found
303 See Other
304 Not Modified
305 Use Proxy
307 Temporary Redirect
308 Permanent Redirect
400 Bad Request
401 Unauthorized
402 Payment Required
403 Forbidden
404 Not Found
405 Method Not Allowed
406 Not Acceptable
407 Proxy Authentication Required
408 Request Timeout
409 Conflict
410 Gone
411 Length Required
412 Precondition Failed
413 Payload Too Large
414 Request-URI Too Long
415 Unsupported Media Type
416 Requested Range Not Satisfiable
417 Expectation Failed
418 I'm a teapot
421 Misdirected Request
422 Unprocessable Entity
423 Locked
424 Failed Dependency
426 Upgrade Required
428 Precondition Required
429 Too Many Requests
431 Request Header Fields Too Large
444 Connection Closed Without Response
451 Unavailable For Legal Reasons
499 Client Closed Request
500 Internal Server Error
501 Not Implemented
502 Bad Gateway
503 Service Unavailable
504 Gateway Timeout
505 HTTP Version Not Supported
506 Variant Also Negotiates
507 Insufficient Storage
508 Loop Detected
510 Not Extended
511 Network Authentication Required
599 Network Connect Timeout Error
"""
SEED_PHRASES: dict[int, str] = {
    int(code): phrase for code, phrase in (line.split(" ", 1) for line in SEED_TABLE.strip().splitlines())
}


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (200, "application/json", b'{"ok":true}'),
        (200, "application/json; charset=utf-8", b'{"ok":true}'),
        (200, "Application/JSON", b"{}"),
        (200, "application/vnd.api+json", b'{"data":null}'),
        (200, "application/problem+json", b'{"title":"fine"}'),
        (200, "application/json", b"[]"),
        (201, "application/json", b'{"id":1}'),
        (202, "application/json", b'"queued"'),
        (204, None, b""),
        (204, "text/html", b"<html>"),
        (204, "application/json", b"{not json"),
    ],
)
def test_a_2xx_in_json_or_a_204_is_a_success(status: int, content_type: str | None, body: bytes) -> None:
    """The seed's rule: 2xx answered in JSON, or 204 whatever its body."""
    assert classify(status, content_type, body) is None


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (200, "text/html", b"<html>"),
        (200, "text/plain", b'{"ok":true}'),
        (200, "application/json", b"{not json"),
        (200, "application/json", b'{"a": NaN}'),
        (200, "application/json", b"[Infinity, -Infinity]"),
        (200, "application/json", b""),
        (200, "application/json", b"\xff\xfe"),
        (200, None, b'{"ok":true}'),
        (200, "", b'{"ok":true}'),
        (201, "text/html", b"Created"),
        (299, "text/plain", b"ok"),
    ],
)
def test_a_2xx_that_is_not_json_asks_for_json(status: int, content_type: str | None, body: bytes) -> None:
    """2xx without a JSON content type, or with a body that does not parse, is the seed's JSON error."""
    assert classify(status, content_type, body) == NOT_JSON


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (301, "Moved Permanently"),
        (302, "Found"),
        (304, "Not Modified"),
        (404, "Not Found"),
        (500, "Internal Server Error"),
        (503, "Service Unavailable"),
        (444, "Connection Closed Without Response"),
        (499, "Client Closed Request"),
        (599, "Network Connect Timeout Error"),
        (999, "Unknown Status"),
    ],
)
def test_any_other_status_names_the_code_and_its_phrase(status: int, phrase: str) -> None:
    """Redirects, 4xx, 5xx and the seed's non-standard codes are failures with the code and its phrase."""
    expected = f"HTTP response code is {status} ({phrase}), it must be 200"
    assert classify(status, "application/json", b'{"ok":true}') == expected
    assert classify(status, None, b"") == expected


def test_the_seed_500_message_is_exact() -> None:
    """The message the seed's troubleshooting section quotes."""
    assert (
        classify(500, "text/html", b"<h1>oops</h1>")
        == "HTTP response code is 500 (Internal Server Error), it must be 200"
    )


@given(
    status=st.integers(min_value=0, max_value=999).filter(lambda s: not 200 <= s <= 299),
    content_type=st.sampled_from([None, "application/json", "text/html", "application/problem+json"]),
    body=st.binary(max_size=64),
)
def test_every_non_2xx_status_is_a_failure_naming_the_code(status: int, content_type: str | None, body: bytes) -> None:
    """Outside 2xx nothing succeeds, whatever the body: the message names the code and a phrase."""
    message = classify(status, content_type, body)
    assert message is not None
    assert message.startswith(f"HTTP response code is {status} (")
    assert message.endswith("), it must be 200")


@given(
    status=st.integers(min_value=200, max_value=299).filter(lambda s: s != 204),
    content_type=st.one_of(
        st.none(),
        st.sampled_from(["text/html", "text/plain", "application/xml", "text/json", "application/jsonp", ""]),
    ),
    body=st.sampled_from([b"", b"{}", b'{"ok":true}', b"<html>", b"null"]),
)
def test_every_2xx_but_204_without_a_json_type_asks_for_json(
    status: int, content_type: str | None, body: bytes
) -> None:
    """A body that happens to be JSON is not enough: the content type must say JSON too."""
    assert classify(status, content_type, body) == NOT_JSON


@given(status=st.integers(min_value=200, max_value=299), body=st.sampled_from([b"{}", b'{"a":[1,2]}', b"0", b"true"]))
def test_every_2xx_answered_in_json_is_a_success(status: int, body: bytes) -> None:
    """Any code between 200 and 299 with a JSON answer passes, not just 200."""
    assert classify(status, "application/json", body) is None


def test_status_text_is_code_and_phrase() -> None:
    """The log's `status_text` column: "500 Internal Server Error"."""
    assert status_text(500) == "500 Internal Server Error"
    assert status_text(444) == "444 Connection Closed Without Response"
    assert status_text(999) == "999 Unknown Status"


def test_the_seed_table_is_copied_in_full() -> None:
    """Every code of the seed's table, with the seed's exact phrase (non-standard ones included)."""
    assert len(SEED_PHRASES) == 63
    missing = {code: phrase for code, phrase in SEED_PHRASES.items() if REASON_PHRASES.get(code) != phrase}
    assert missing == {}


def test_no_response_is_reported_as_unreachable_with_the_cause() -> None:
    """Refused, DNS, TLS, timeout: the endpoint is unreachable, and the cause is kept."""
    message = unreachable("could not connect (Connection refused)")
    assert message.startswith("Endpoint unreachable")
    assert "Connection refused" in message
