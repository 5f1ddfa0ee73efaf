"""The delivery log's view of an answer: bounded, masked before it is cut, and honest about cuts."""

from __future__ import annotations

import httpx

from activities.http_exchange import STORED_BODY_BYTES, STORED_HEADER_VALUE_CHARS, Exchange
from domain.endpoints import MASK

SECRET = "Basic c2hvcDpTM2NyZXQtcGFzc3dvcmQ="


def _mask(text: str) -> str:
    return text.replace(SECRET, MASK)


def test_a_credential_across_a_header_values_cut_is_masked_before_the_cut() -> None:
    padding = "j" * (STORED_HEADER_VALUE_CHARS - 14)
    answer = Exchange(500, httpx.Headers({"x-echo": padding + SECRET}), b"", complete=True)

    kept = answer.record(_mask).headers["x-echo"]

    assert kept.startswith(padding + MASK) and "c2hvcDpT" not in kept


def test_the_content_type_is_shown_as_it_came() -> None:
    answer = Exchange(200, httpx.Headers({"content-type": "application/json"}), b"{}", complete=True)
    assert answer.record(lambda _: MASK).headers["content-type"] == "application/json"


def test_a_body_is_flagged_cut_exactly_when_what_is_shown_is_not_all_of_it() -> None:
    latin1 = bytes(range(0xA0, 0x100)) * 100  # 9,600 bytes, each invalid UTF-8: 3 bytes shown
    small = Exchange(200, httpx.Headers(), b'{"ok": true}', complete=True).record(_mask)
    large = Exchange(200, httpx.Headers(), latin1, complete=True).record(_mask)

    assert (small.body, small.body_truncated) == ('{"ok": true}', False)
    assert large.body_truncated and len(large.body.encode()) <= STORED_BODY_BYTES
