"""Request bodies read as JSON strictly: a key given twice in one object is refused, and a
number too long for Python's int() is refused by the rule of its field, not as unreadable JSON.

A body with `"url"` twice means two things: a proxy or validator that reads the first key sees
another request than the one the service would act on (the last key won).

FastAPI reads a body (through `StrictJsonRequest.json`, the route class FastAPI documents for
reading a request differently) before it checks the caller's token, so that read stays
json.loads at C speed. The search for a key given twice walks every object in Python, about
ten times slower on a body of many small objects: `no_key_given_twice` runs it as a
dependency of the routers that take JSON, after the token was checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.deps import AccountDep

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
    """An object as parsed, with the first key it was given twice."""

    twice: str | None = None


def _whole_number(digits: str) -> int:
    try:
        return int(digits)
    except ValueError:  # too many digits
        return -_BEYOND_EVERY_BOUND if digits.startswith("-") else _BEYOND_EVERY_BOUND


def loads(body: bytes) -> Any:
    """JSON as json.loads reads it, but for a number too long for int() (see the module), and in
    UTF-8 only, as RFC 8259 asks of JSON between systems: given bytes, json.loads also takes
    UTF-16 and UTF-32, which a proxy or validator before us may read otherwise. A leading byte
    order mark is ignored, as the RFC allows."""
    text = body.decode("utf-8-sig")  # UnicodeDecodeError: "is not valid JSON (in UTF-8)"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # an int of more digits than Python reads: the slower reading, for this body only
        return json.loads(text, parse_int=_whole_number)


def key_given_twice(body: bytes) -> tuple[str, ...] | None:
    """The path to the first key given twice in one object of a JSON body, if any."""
    twice = False

    def as_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal twice
        parsed = dict(pairs)
        if len(parsed) == len(pairs):
            return parsed
        twice = True
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                break
            seen.add(key)
        marked = _Object(pairs)
        marked.twice = key
        return marked

    parsed = json.loads(body, object_pairs_hook=as_object, parse_int=_whole_number)
    return _path_to_twice(parsed) if twice else None


def _path_to_twice(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where the first key given twice is, depth first."""
    if isinstance(value, _Object):
        return (*path, value.twice or "")
    if isinstance(value, dict):
        items: Iterable[tuple[str, Any]] = value.items()
    elif isinstance(value, list):
        items = ((str(n), item) for n, item in enumerate(value))
    else:
        return None
    return next((found for key, item in items if (found := _path_to_twice(item, (*path, key)))), None)


async def no_key_given_twice(request: Request, _: AccountDep) -> None:
    """Refuse (DuplicateKey) a JSON body with a key given twice; after the caller's token (AccountDep)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower().endswith("json"):
        body = await request.body()
        if body and (path := key_given_twice(body)):
            raise DuplicateKey(path)


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
