"""Why no answer came, in words: told from httpcore's and h11's own words, never the receiver's."""

from __future__ import annotations

import json
from functools import partial

import httpx

from activities.http_errors import describe, describe_cut
from domain.wire import mask_echoes


def test_a_malformed_answer_quoting_the_word_closed_is_not_a_closed_connection() -> None:
    exc = httpx.RemoteProtocolError("illegal header line: bytearray(b'X: closed\\x00')")
    assert describe(exc, 5).startswith("the receiver's answer is not valid HTTP/1.1 (illegal header line")


def test_what_a_receiver_sends_is_quoted_at_most_200_characters() -> None:
    exc = httpx.RemoteProtocolError("illegal status line: " + "x" * 100_000)
    assert len(describe(exc, 5)) < 300


def test_a_connection_closed_before_an_answer_is_said_so() -> None:
    for message in ("Server disconnected without sending a response.", ""):
        described = describe(httpx.RemoteProtocolError(message), 5, kept_alive=True)
        assert described.startswith("connection closed by the receiver before any response")
        assert described.endswith("on a connection kept alive from an earlier POST")


def test_quoted_bytes_read_as_text_and_a_kept_alive_connection_is_named() -> None:
    """An outside probe: a receiver's 204 with a body left `<b>x</b>` before the next answer on the
    connection, and the next POST's error read `bytearray(b'<b>x</b>HTTP/1.1 204 No Content')`."""
    exc = httpx.RemoteProtocolError("illegal status line: bytearray(b'<b>x</b>HTTP/1.1 204 No Content\\x00\\'')")
    assert describe(exc, 5, kept_alive=True) == (
        "the receiver's answer is not valid HTTP/1.1 "
        '(illegal status line: "<b>x</b>HTTP/1.1 204 No Content\\x00\'"), on a connection kept alive '
        "from an earlier POST whose answer may have left bytes behind"
    )


def test_an_echoed_credential_is_masked_before_the_quote_is_cut_and_with_its_tab() -> None:
    """A second read: quoted as text, a header value's tab was written \\x09, which neither echo
    mask looks for (as sent, and JSON's \\t); and a credential the 200-character cut split in two
    was masked in neither half."""
    secret = "tok\tsecret12"
    masked = partial(mask_echoes, credentials=[json.dumps(secret)[1:-1], secret])
    tab = httpx.RemoteProtocolError("illegal status line: bytearray(b'X-Shop-Token: tok\\tsecret12')")
    long_token = "Zm9vOmJhcnNlY3JldA" * 3
    cut = httpx.RemoteProtocolError("illegal status line: " + "x" * 170 + long_token)  # across the cut

    assert describe(tab, 5, masked=masked).endswith('(illegal status line: "X-Shop-Token: ********")')
    quoted = describe(cut, 5, masked=partial(mask_echoes, credentials=[long_token]))
    assert long_token[:8] not in quoted and "********" in quoted


def test_a_body_cut_short_says_how_and_masks_what_it_quotes() -> None:
    """A second read: a malformed chunk in a body was called a closed connection, and h11's quote
    of it (Python's bytes repr) went into the log unmasked: a credential echoed there showed."""
    secret = "tok'\"-ABCDEFGHIJKLMNOP"
    masked = partial(mask_echoes, credentials=[secret])
    chunk = httpx.RemoteProtocolError(f"illegal chunk header: bytearray({(secret + chr(13) + chr(10)).encode()!r})")
    closed = httpx.RemoteProtocolError(
        "peer closed connection without sending complete message body (received 1 bytes)"
    )

    assert describe_cut(chunk, 5, masked) == 'its body is not valid HTTP/1.1 (illegal chunk header: "********\\r\\n")'
    assert describe_cut(closed, 5, masked).startswith("the connection closed before its body ended (peer closed")
    assert describe_cut(httpx.ReadTimeout("timed out"), 5, masked) == "its body did not end within 5s"
    assert describe_cut(TimeoutError(), 5, masked) == "its body did not end within 5s"
