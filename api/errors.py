"""Every refusal answers `{"detail": summary, "errors": [{"field", "message"}]}` and never echoes input."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from domain.events import EventType
from runtime.registry import EndpointNotFound, EndpointRejected

log = logging.getLogger(__name__)

# Model-level rules name their field at the front of the message: "events: …".
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.]*): (.+)$", re.DOTALL)
_TAGS = {e.value for e in EventType}


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic's errors as field + reason, without the rejected input (it may be a secret)."""
    problems = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] == "body":
            loc = loc[1:]
        # A discriminated union puts the chosen event type in the path; it is not a field.
        loc = [part for part in loc if part not in _TAGS]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        field = ".".join(loc)
        prefixed = _FIELD_PREFIX.match(message)
        if prefixed:
            field = ".".join(filter(None, [field, prefixed.group(1)]))
            message = prefixed.group(2)
        problems.append({"field": field or "body", "message": message})
    return problems


def _answer(code: int, problems: list[dict[str, str]]) -> JSONResponse:
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return JSONResponse({"detail": summary, "errors": problems}, status_code=code)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _answer(status.HTTP_422_UNPROCESSABLE_CONTENT, field_errors(exc.errors()))

    @app.exception_handler(EndpointRejected)
    async def _rejected(_: Request, exc: EndpointRejected) -> JSONResponse:
        return _answer(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.problems)

    @app.exception_handler(EndpointNotFound)
    async def _not_found(_: Request, exc: EndpointNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(RPCError)
    async def _temporal_down(_: Request, exc: RPCError) -> JSONResponse:
        log.warning("Temporal call failed: %s (%s)", exc.message, exc.status)
        return JSONResponse(
            {"detail": "Temporal is unavailable, try again"}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE
        )
