"""Every refusal answers `{"detail": summary, "errors": [{"field", "message"}]}` and never echoes input.

`ErrorBody` is that shape in the OpenAPI document; `documented` lists, per route, the refusals
it really gives, so a client (and the fuzzing gate in tests/) can rely on them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from temporalio.service import RPCError, RPCStatusCode

from api.deps import get_destination_check, get_settings
from api.json_body import DuplicateKey
from domain.problems import duplicate_key, field_errors
from infra.network_guard import ForbiddenDestination
from infra.temporal import UpdatesBusy
from services.deliveries import EndpointThrottled
from services.delivery_log import DeliveryNotFound
from services.endpoints import EndpointNotFound, EndpointRejected
from services.ingest import EventConflict
from services.log_window import BadPageToken
from services.reruns import (
    RECOVERY_ANSWER_SECONDS,
    DeliveryStillPending,
    EndpointDisabledForReruns,
    RecoveryUnfinished,
)

log = logging.getLogger(__name__)


class FieldProblem(BaseModel):
    field: str  # a body field ("retry.max_retries"), a parameter ("since"), or "body"
    message: str  # the rule it breaks, never the value


class ErrorBody(BaseModel):
    """A refusal: a one-line summary, and the fields at fault (none for a 401, 404, 409 or 503)."""

    detail: str
    errors: list[FieldProblem]


# The document's description: what holds of every refusal, those of no operation included.
REFUSALS = (
    'Every refusal is an `ErrorBody` (but `/healthz`\'s 503, which is its `Health`): `{"detail": summary, '
    '"errors": [{"field", "message"}]}`. `errors` names each field at fault and the rule it breaks, never '
    "the value sent, and is empty when no field is at fault (a 401, a 404, a 503, the 409 of a re-run of a pending "
    "delivery). Besides the refusals each operation lists, a path that does not exist answers 404, a method a path "
    "does not have 405, and a body over 1 MiB 413 on any route, all as an `ErrorBody`."
)

_MEANINGS = {
    401: "Missing or wrong bearer token (when the service has one)",
    404: "No such resource in this account",
    409: "Conflicts with what the service already holds",
    413: "Request body over 1 MiB",
    422: "Invalid input: each problem names its field and the rule, never the value",
    503: "Temporal is unreachable, or the work goes on beyond the wait; try again",
}


def invalid_input(problems: Mapping[tuple[str, ...], str]) -> RequestValidationError:
    """Input a route checked itself, raised to go through the same handler as pydantic's own
    refusals (one 422 naming each field; invalid_field answers one for a route that reads its
    body itself): each problem by where pydantic would put it, e.g. ("query", "until"), and why."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": why} for loc, why in problems.items()])


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that refuses with these status codes."""
    return {code: {"model": ErrorBody, "description": _MEANINGS[code]} for code in codes}


def without_fastapi_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """`app.openapi` without the 422 FastAPI adds to every route with a parameter: its shape
    (HTTPValidationError) is not ours, and a route whose only parameter is a string in the path
    never answers one. Each route lists the refusals it gives with `documented`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operation in (op for path in schema["paths"].values() for op in path.values()):
                refusal = operation["responses"].get("422", {})
                if "HTTPValidationError" in str(refusal.get("content")):
                    del operation["responses"]["422"]
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        return app.openapi_schema or build()

    return openapi


_REFUSED_BY_TEMPORAL = (
    "Temporal refused this request as invalid, and the same request will be refused again; "
    "it passed this API's own checks, so the service's log says more"
)


def _busy() -> JSONResponse:
    busy = "Temporal is busy (a limit on requests at once was reached): retry in a second"
    return _answer(status.HTTP_503_SERVICE_UNAVAILABLE, busy, [], headers={"Retry-After": "1"})


def _answer(
    code: int, detail: str, problems: list[dict[str, str]], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": problems}, status_code=code, headers=headers)


def _invalid(problems: list[dict[str, str]]) -> JSONResponse:
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return _answer(status.HTTP_422_UNPROCESSABLE_CONTENT, summary, problems)


def _checks_destination(route: Any) -> bool:
    """Whether the route checks its body's `url` reaches a public address (once the body is
    valid): it depends on the destination check."""
    dependant = getattr(route, "dependant", None)
    return dependant is not None and any(d.call is get_destination_check for d in dependant.dependencies)


def _not_public(exc: ForbiddenDestination) -> dict[str, str]:
    return {"field": "url", "message": f"{exc.refusal}; webhooks go to public addresses only"}


async def _destination_problems(request: Request, body: Any, problems: list[dict[str, str]]) -> list[dict[str, str]]:
    """A body refused for its other fields is also told when its URL goes to a private address,
    so one answer names every problem (the route checks it only once the body is valid)."""
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str) or not _checks_destination(request.scope.get("route")):
        return []
    if any(problem["field"] == "url" for problem in problems):
        return []
    try:
        check = await get_destination_check(request, await get_settings(request))
        await check(url)
    except ForbiddenDestination as exc:
        return [_not_public(exc)]
    return []


def invalid_field(field: str, message: str) -> JSONResponse:
    """A 422 on one field, for a route that reads its body itself."""
    return _invalid([{"field": field, "message": message}])


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("loc") == ("body",) and isinstance(e.get("input"), bytes) for e in exc.errors()):
            # FastAPI reads a body as JSON only when its content type says so; otherwise the
            # model gets the raw bytes, and "must be an object" would blame a good body.
            return _invalid([{"field": "body", "message": "must be JSON, sent as Content-Type: application/json"}])
        problems = field_errors(exc.errors())
        return _invalid(problems + await _destination_problems(request, exc.body, problems))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        # 401s, routing's 404 and 405, and the routes' own refusals: the same shape as the rest.
        if exc.status_code == status.HTTP_400_BAD_REQUEST and isinstance(exc.__cause__, ValueError):
            # FastAPI's answer to a body it could not read as JSON (bytes that are not UTF-8):
            # invalid input like any other, on the field at fault.
            return _invalid([{"field": "body", "message": "is not valid JSON (in UTF-8)"}])
        if exc.status_code == status.HTTP_400_BAD_REQUEST and isinstance(exc.__cause__, RecursionError):
            return _invalid([{"field": "body", "message": "is nested too deeply to read"}])
        return _answer(exc.status_code, str(exc.detail), [], exc.headers)

    @app.exception_handler(DuplicateKey)
    async def _twice(_: Request, exc: DuplicateKey) -> JSONResponse:
        return _invalid([duplicate_key(exc.path)])

    @app.exception_handler(EndpointRejected)
    async def _rejected(_: Request, exc: EndpointRejected) -> JSONResponse:
        return _invalid(exc.problems)

    @app.exception_handler(ForbiddenDestination)
    async def _forbidden(_: Request, exc: ForbiddenDestination) -> JSONResponse:
        return _invalid([_not_public(exc)])

    @app.exception_handler(EndpointNotFound)
    async def _not_found(_: Request, exc: EndpointNotFound) -> JSONResponse:
        # Fixed words: a refusal never echoes what it refused (here, any text in the path).
        return _answer(status.HTTP_404_NOT_FOUND, "no endpoint with this id in your account", [])

    @app.exception_handler(DeliveryNotFound)
    async def _no_delivery(_: Request, exc: DeliveryNotFound) -> JSONResponse:
        return _answer(status.HTTP_404_NOT_FOUND, "no delivery with this id in your account", [])

    @app.exception_handler(EndpointThrottled)
    async def _throttled(_: Request, exc: EndpointThrottled) -> JSONResponse:
        wait = max(1, math.ceil((exc.until - datetime.now(UTC)).total_seconds()))
        return _answer(status.HTTP_409_CONFLICT, str(exc), [], headers={"Retry-After": str(wait)})

    @app.exception_handler(DeliveryStillPending)
    async def _pending(_: Request, exc: DeliveryStillPending) -> JSONResponse:
        return _answer(status.HTTP_409_CONFLICT, str(exc), [])

    @app.exception_handler(EndpointDisabledForReruns)
    async def _disabled(_: Request, exc: EndpointDisabledForReruns) -> JSONResponse:
        return _answer(status.HTTP_409_CONFLICT, str(exc), [])

    @app.exception_handler(EventConflict)
    async def _conflict(_: Request, exc: EventConflict) -> JSONResponse:
        problem = {"field": "id", "message": "was already accepted with a different body"}
        return _answer(status.HTTP_409_CONFLICT, f"id: {problem['message']}", [problem])

    @app.exception_handler(BadPageToken)
    async def _bad_token(_: Request, exc: BadPageToken) -> JSONResponse:
        return _invalid([{"field": "page_token", "message": str(exc)}])

    @app.exception_handler(RecoveryUnfinished)
    async def _recovery_unfinished(_: Request, exc: RecoveryUnfinished) -> JSONResponse:
        retry_after = {"Retry-After": str(round(RECOVERY_ANSWER_SECONDS))}
        return _answer(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), [], retry_after)

    @app.exception_handler(UpdatesBusy)
    async def _updates_busy(_: Request, exc: UpdatesBusy) -> JSONResponse:
        return _busy()  # this process's own hold on one account's changes in flight (UpdateSlots)

    @app.exception_handler(RPCError)
    async def _temporal_down(_: Request, exc: RPCError) -> JSONResponse:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            # Input this API's checks let through and Temporal refuses (an id past its length
            # limit was one): the same request is refused again, so it is no "try again" 503.
            log.error("Temporal refused a request as invalid: %s", exc.message)
            return _answer(status.HTTP_400_BAD_REQUEST, _REFUSED_BY_TEMPORAL, [])
        log.warning("Temporal call failed: %s (%s)", exc.message, exc.status.name)
        if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED:
            # A limit, not an outage: most often the 10 changes one account's endpoints may have
            # in flight at once (Temporal's limit on a workflow's concurrent updates).
            return _busy()
        return _answer(status.HTTP_503_SERVICE_UNAVAILABLE, "Temporal is unavailable, try again", [])
