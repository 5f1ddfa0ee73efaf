"""Why a value was refused, in the words of the rest of the API: "must be 10 or less", not
pydantic's "Input should be less than or equal to 10". Our own validators already speak so."""

from __future__ import annotations

from typing import Any

from domain.events import EVENT_ID_PATTERN
from domain.validation import NO_COLON_OR_CONTROL_CHARACTERS, NO_CONTROL_CHARACTERS

# Pydantic's rules by the error's type; its context fills the numbers in.
_PLAIN = {
    "missing": "is required",
    "string_type": "must be text",
    # A lone surrogate (\ud800), which JSON can spell and no UTF-8 can carry.
    "string_unicode": "must be valid Unicode text (a lone surrogate such as \\ud800 is not)",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_parsing_size": "is too large a number",  # more digits than Python reads (4,300)
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be {ge} or more",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be {le} or less",
    "enum": "must be {expected}",
    "literal_error": "must be {expected}",
    "datetime_type": "must be a date and time in ISO 8601, such as 2026-11-29T08:00:00Z",
    "datetime_parsing": "must be a date and time in ISO 8601, such as 2026-11-29T08:00:00Z",
    "datetime_from_date_parsing": "must be a date and time in ISO 8601, such as 2026-11-29T08:00:00Z",
    "timezone_aware": "must say its time zone (Z, or an offset such as +01:00)",
}
_PATTERNS = {
    NO_CONTROL_CHARACTERS: "must not contain control characters (such as line breaks)",
    NO_COLON_OR_CONTROL_CHARACTERS: "must not contain a colon or control characters (such as line breaks)",
    EVENT_ID_PATTERN: "must be 1 to 128 letters, digits and . _ : - (starting with a letter or digit)",
}


def _number(value: Any) -> Any:
    return f"{value:g}" if isinstance(value, float) else value


def _length(kind: str, context: dict[str, Any]) -> str:
    """A string's characters, a list's items (a constrained string's too_long says "Value")."""
    unit = "items" if context.get("field_type") in ("List", "Tuple", "Set") else "characters"
    if kind.endswith("too_long"):
        return f"must have at most {context.get('max_length')} {unit}"
    least = context.get("min_length", 1)
    return "must not be empty" if least == 1 else f"must have at least {least} {unit}"


def _plain(kind: str, context: dict[str, Any], message: str) -> str:
    if kind in ("string_too_short", "string_too_long", "too_short", "too_long"):
        return _length(kind, context)
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(str(context.get("pattern")), "contains characters that are not allowed here")
    template = _PLAIN.get(kind)
    return message if template is None else template.format(**{k: _number(v) for k, v in context.items()})


def reason(error: Any) -> str:
    """The reason of one of pydantic's errors (`ValidationError.errors()`), in plain words."""
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if message.startswith("must ") or message.startswith("is "):
        return message
    return _plain(str(error.get("type")), dict(error.get("ctx") or {}), message)
