"""Validation failures as the API answers them: the field, and the reason, never the rejected input."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel

from domain.endpoints import EndpointSpec
from domain.events import OPERATIONAL_EVENTS, EventType, OrderErrorEvent, OrderShippedEvent, TrackingUpdateEvent
from domain.plain_words import reason

# Model-level rules name their field at the front of the message: "events: …".
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.]*): (.+)$", re.DOTALL)
# A discriminated union puts the chosen event type in the path; it is not a field.
_EVENT_TAGS = {e.value for e in EventType}
_ORDER_TAGS = sorted(_EVENT_TAGS - {e.value for e in OPERATIONAL_EVENTS})
_TAG = re.compile(r"'([A-Z_]+)'")
# Shorter inputs are words and numbers a message may hold anyway ("10", "https"); longer ones are not repeated.
_ECHO_MIN_LENGTH = 8
# A body of a million bad items is answered with the first ones, not a million lines.
MAX_PROBLEMS = 50


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


@cache
def known_field_names() -> frozenset[str]:
    """Every field name of what the API reads: an unknown field is named back only if it is one of these
    (`shipment` on a tracking update), since any other key could be a secret pasted in the wrong place."""
    names: set[str] = set()
    pending: list[type[BaseModel]] = [EndpointSpec, OrderShippedEvent, OrderErrorEvent, TrackingUpdateEvent]
    seen: set[type[BaseModel]] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            names.add(name)
            pending.extend(_models_in(field.annotation))
    return frozenset(names)


def duplicate_key(path: Sequence[str]) -> dict[str, str]:
    """A key given twice in one object, named by its path as far as the API's own names (and list
    indexes) lead: from the first other name on, the problem is told on the object that holds it,
    as an unknown field is (it could be a secret, or text no answer can carry)."""
    known = known_field_names()
    named: list[str] = []
    for part in path:
        if not (part in known or (part.isdecimal() and part.isascii())):
            unknown = "has a key given twice (an unknown name is not repeated: it could be a secret)"
            return {"field": ".".join(named) or "body", "message": unknown}
        named.append(part)
    return {"field": ".".join(named), "message": "is given twice: send each key once"}


def _echoes(message: str, value: Any) -> bool:
    return isinstance(value, str | int | float) and len(str(value)) >= _ECHO_MIN_LENGTH and str(value) in message


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic's errors as field + reason, without the rejected input (it may be a secret)."""
    problems = []
    for err in errors[:MAX_PROBLEMS]:
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path"):
            loc = loc[1:]
        loc = [part for part in loc if part not in _EVENT_TAGS]
        message = reason(err)
        kind = err.get("type")
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            ctx = err.get("ctx", {})
            loc.append(str(ctx.get("discriminator", "event")).strip("'"))
            # The union's own tags (an order event's are not the notices'), as pydantic lists them.
            expected = _TAG.findall(str(ctx.get("expected_tags", ""))) or _ORDER_TAGS
            message = "must be one of " + ", ".join(sorted(expected))
        elif kind == "extra_forbidden" and loc and loc[-1] not in known_field_names():
            loc = loc[:-1]
            message = "has a field that is not allowed (an unknown name is not repeated: it could be a secret)"
        elif kind == "extra_forbidden":
            message = "is not allowed here"
        elif kind == "json_invalid":
            loc, message = [], "is not valid JSON"
        field = ".".join(loc)
        prefixed = _FIELD_PREFIX.match(message)
        if prefixed:
            field = ".".join(filter(None, [field, prefixed.group(1)]))
            message = prefixed.group(2)
        if _echoes(message, err.get("input")):
            message = "is not valid"
        problems.append({"field": field or "body", "message": message})
    return problems
