"""Request bodies read as JSON strictly: a key given twice in one object is refused, and a
number too long for Python's int() is refused by the rule of its field, not as unreadable JSON.

A body with `"url"` twice means two things: a proxy or validator that reads the first key sees
another request than the one the service would act on (the last key won). Used as the
`route_class` of every router that reads a JSON body (FastAPI's documented way to change how
a request is read).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

# Python refuses to read an int of over 4,300 digits (CVE-2020-10735): such a number reads as one
# past every bound the API sets, so its field's own rule names it ("must be 9999 or less").
_BEYOND_EVERY_BOUND = 10**100


class DuplicateKey(ValueError):
    """A key given twice in one object; `path` leads to it from the body (list items by index).
    Its text names no key: an unknown one could be a secret (domain.problems.duplicate_key)."""

    def __init__(self, path: tuple[str, ...]) -> None:
        super().__init__("a key is given twice")
        self.path = path


class _Object(dict[str, Any]):
    """An object as parsed, with the first key it was given twice, if any."""

    twice: str | None = None


def _whole_number(digits: str) -> int:
    try:
        return int(digits)
    except ValueError:  # too many digits
        return -_BEYOND_EVERY_BOUND if digits.startswith("-") else _BEYOND_EVERY_BOUND


def _path_to_twice(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where the first key given twice is, depth first."""
    if isinstance(value, _Object):
        if value.twice is not None:
            return (*path, value.twice)
        items: Iterable[tuple[str, Any]] = value.items()
    elif isinstance(value, list):
        items = ((str(n), item) for n, item in enumerate(value))
    else:
        return None
    return next((found for key, item in items if (found := _path_to_twice(item, (*path, key)))), None)


def loads(body: bytes) -> Any:
    """JSON, strictly (see the module); raises DuplicateKey, or ValueError as json.loads does."""
    twice = False

    def as_object(pairs: list[tuple[str, Any]]) -> _Object:
        nonlocal twice
        parsed = _Object(pairs)
        if len(parsed) < len(pairs):
            keys = [key for key, _ in pairs]
            parsed.twice = next(key for n, key in enumerate(keys) if key in keys[:n])
            twice = True
        return parsed

    parsed = json.loads(body, object_pairs_hook=as_object, parse_int=_whole_number)
    if twice and (path := _path_to_twice(parsed)):
        raise DuplicateKey(path)
    return parsed


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def strictly(request: Request) -> Response:
            return await handle(StrictJsonRequest(request.scope, request.receive))

        return strictly
