"""Bodies read strictly: a key given twice is named by its path; a number too long for int()
reads as one past every bound, for its field's rule to name."""

from __future__ import annotations

import pytest

from api.json_body import DuplicateKey, loads


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
    with pytest.raises(DuplicateKey) as twice:
        loads(body)
    assert twice.value.field == field


def test_a_number_too_long_to_read_is_past_every_bound_and_the_rest_reads_as_json() -> None:
    assert loads(b'{"code": 1' + b"0" * 5000 + b', "neg": -' + b"9" * 5000 + b"}") == {
        "code": 10**100,
        "neg": -(10**100),
    }
    assert loads(b'{"a": [1, 2.5, "x", null, true], "b": {}}') == {"a": [1, 2.5, "x", None, True], "b": {}}
