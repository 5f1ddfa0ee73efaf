"""Validation failures as the API answers them: the field, and the reason."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from domain.events import EventType

# Model-level rules name their field at the front of the message: "events: …".
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.]*): (.+)$", re.DOTALL)
# A discriminated union puts the chosen event type in the path; it is not a field.
_UNION_TAGS = {e.value for e in EventType}


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic's errors as field + reason, without the rejected input (it may be a secret)."""
    problems = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] == "body":
            loc = loc[1:]
        loc = [part for part in loc if part not in _UNION_TAGS]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            loc.append(str(err.get("ctx", {}).get("discriminator", "event")).strip("'"))
            message = "must be one of " + ", ".join(sorted(_UNION_TAGS))
        field = ".".join(loc)
        prefixed = _FIELD_PREFIX.match(message)
        if prefixed:
            field = ".".join(filter(None, [field, prefixed.group(1)]))
            message = prefixed.group(2)
        problems.append({"field": field or "body", "message": message})
    return problems
