"""A refused endpoint names every problem in one answer, each in plain words (issue 17)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.endpoints import EndpointRequest
from domain.events import OrderEvent
from domain.problems import field_errors

# pydantic's own phrasing, which no answer may show.
PYDANTIC_WORDS = ("Input should", "String should", "List should", "Value should", "Field required", "valid integer")


def problems(model: Any, data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    found = field_errors(exc.value.errors())
    assert not [p for p in found if any(words in p["message"] for words in PYDANTIC_WORDS)], found
    return {p["field"]: p["message"] for p in found}


def test_every_problem_of_an_endpoint_comes_in_one_answer_in_plain_words() -> None:
    """Field rules and the rules that used to wait for every field to be valid (an event twice, a
    header the service sets) are all named at once."""
    found = problems(
        EndpointRequest,
        {
            "url": "ftp://shop.example.com/hooks",
            "events": ["ORDER_SHIPPED", "ORDER_SHIPPED"],
            "auth": {"username": "sh:op", "password": ""},
            "retry": {"enabled": True, "max_retries": 11},
            "custom_header": {"key": "Content-Type", "value": "x"},
            "description": "x" * 1025,
            "rate_limit": {"per_second": 0},
            "ordering": "random",
        },
    )
    assert found == {
        "url": "must be an absolute http or https URL",
        "events": "must not list an event twice",
        "auth.username": "must not contain a colon or control characters (such as line breaks)",
        "auth.password": "must not be empty",
        "retry.max_retries": "must be 10 or less",
        "custom_header.key": "is a header the service sets itself and cannot be replaced",
        "description": "must have at most 1024 characters",
        "rate_limit.per_second": "must be more than 0",
        "ordering": "must be 'none' or 'fifo'",
    }


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"events": []}, "events", "must not be empty"),
        ({"retry": {"enabled": True, "max_retries": -1}}, "retry.max_retries", "must be 0 or more"),
        ({"retry": {"enabled": True, "max_retries": "3"}}, "retry.max_retries", "must be a whole number"),
        ({"retry": {"enabled": "maybe"}}, "retry.enabled", "must be true or false"),
        ({"rate_limit": {"per_second": 5000}}, "rate_limit.per_second", "must be 1000 or less"),
        ({"rate_limit": {"per_second": "fast"}}, "rate_limit.per_second", "must be a number"),
        (
            {"custom_header": {"key": "X-Token", "value": "v" * 4097}},
            "custom_header.value",
            "must have at most 4096 characters",
        ),
        ({"custom_header": "X-Token"}, "custom_header", "must be an object"),
        ({"url": None}, "url", "must be text"),
        (
            {"description": "x\ud800"},
            "description",
            "must be valid Unicode text (a lone surrogate such as \\ud800 is not)",
        ),
    ],
)
def test_each_rule_reads_as_words(data: dict[str, Any], field: str, message: str) -> None:
    found = problems(EndpointRequest, {"url": "https://shop.example.com/hooks", "events": ["ORDER_SHIPPED"]} | data)
    assert found == {field: message}


def test_a_missing_field_is_required() -> None:
    assert problems(EndpointRequest, {"events": ["ORDER_SHIPPED"]}) == {"url": "is required"}


def test_an_event_id_rule_says_which_characters() -> None:
    event = {
        "id": "evt one",
        "event": "TRACKING_UPDATE",
        "order": {"order_id": "1"},
        "tracking": {"date": 1, "code": 6},
    }
    with pytest.raises(ValidationError) as exc:
        TypeAdapter(OrderEvent).validate_python(event)
    [problem] = field_errors(exc.value.errors())
    assert problem == {
        "field": "id",
        "message": "must be 1 to 128 letters, digits and . _ : - (starting with a letter or digit)",
    }
