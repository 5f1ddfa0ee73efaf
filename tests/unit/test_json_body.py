"""Bodies read strictly: a key given twice is named by its path; a number too long for int()
reads as one past every bound, for its field's rule to name."""

from __future__ import annotations

import pytest

from api.json_body import key_given_twice, loads
from domain.problems import duplicate_key

_UNKNOWN = "has a key given twice (an unknown name is not repeated: it could be a secret)"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"url": "a", "url": "b"}', "url"),
        (b'{"retry": {"enabled": true, "enabled": false}}', "retry.enabled"),
        (b'{"a": [{"x": 1}, {"y": 1, "z": 2, "y": 3}]}', "a.1.y"),
        (b'{"b": {"k": 1, "k": 1}, "a": 1, "a": 2}', "a"),  # the outer object's first
    ],
)
def test_a_key_given_twice_is_named_by_its_path(body: bytes, field: str) -> None:
    assert ".".join(key_given_twice(body) or ()) == field


def test_a_body_without_a_key_given_twice_has_none() -> None:
    assert key_given_twice(b'{"a": {"b": [1, {"c": 2}]}, "d": []}') is None


def test_a_number_too_long_to_read_is_past_every_bound_and_the_rest_reads_as_json() -> None:
    assert loads(b'{"code": 1' + b"0" * 5000 + b', "neg": -' + b"9" * 5000 + b"}") == {
        "code": 10**100,
        "neg": -(10**100),
    }
    assert loads(b'{"a": [1, 2.5, "x", null, true], "b": {}}') == {"a": [1, 2.5, "x", None, True], "b": {}}


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        (("retry", "enabled"), {"field": "retry.enabled", "message": "is given twice: send each key once"}),
        (("events",), {"field": "events", "message": "is given twice: send each key once"}),
        (("order", "carrier"), {"field": "order.carrier", "message": "is given twice: send each key once"}),
        # An outside probe: a duplicated unknown key was named back (it could be a secret), and one
        # holding a lone surrogate made the answer a 500 (no UTF-8 can carry it).
        (("s3cretK3y",), {"field": "body", "message": _UNKNOWN}),
        (("auth", "hunter2X"), {"field": "auth", "message": _UNKNOWN}),
        (("\ud800",), {"field": "body", "message": _UNKNOWN}),
        (("x\u0000y", "url"), {"field": "body", "message": _UNKNOWN}),
    ],
)
def test_a_key_given_twice_is_named_only_as_far_as_the_apis_own_names_go(
    path: tuple[str, ...], problem: dict[str, str]
) -> None:
    assert duplicate_key(path) == problem


def test_json_is_read_in_utf8_only_a_byte_order_mark_ignored() -> None:
    assert loads(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    for other in ("utf-16", "utf-16-le", "utf-32"):  # not UTF-8, or (without a BOM) not JSON in it
        with pytest.raises(ValueError):
            loads('{"a": 1}'.encode(other))
