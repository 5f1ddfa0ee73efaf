"""Every refusal answers `{"detail": summary, "errors": [{"field", "message"}]}` and never echoes input."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from domain.problems import field_errors
from infra.network_guard import ForbiddenDestination
from services.delivery_log import BadPageToken, DeliveryNotFound
from services.endpoints import EndpointNotFound, EndpointRejected
from services.reruns import RECOVERY_ANSWER_SECONDS, DeliveryStillPending, RecoveryUnfinished

log = logging.getLogger(__name__)


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

    @app.exception_handler(ForbiddenDestination)
    async def _forbidden(_: Request, exc: ForbiddenDestination) -> JSONResponse:
        problem = {"field": "url", "message": f"{exc}; webhooks go to public addresses only"}
        return _answer(status.HTTP_422_UNPROCESSABLE_CONTENT, [problem])

    @app.exception_handler(EndpointNotFound)
    async def _not_found(_: Request, exc: EndpointNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(DeliveryNotFound)
    async def _no_delivery(_: Request, exc: DeliveryNotFound) -> JSONResponse:
        return JSONResponse({"detail": f"delivery {exc} not found"}, status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(DeliveryStillPending)
    async def _pending(_: Request, exc: DeliveryStillPending) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(BadPageToken)
    async def _bad_token(_: Request, exc: BadPageToken) -> JSONResponse:
        return _answer(status.HTTP_422_UNPROCESSABLE_CONTENT, [{"field": "page_token", "message": str(exc)}])

    @app.exception_handler(RecoveryUnfinished)
    async def _recovery_unfinished(_: Request, exc: RecoveryUnfinished) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(round(RECOVERY_ANSWER_SECONDS))},
        )

    @app.exception_handler(RPCError)
    async def _temporal_down(_: Request, exc: RPCError) -> JSONResponse:
        log.warning("Temporal call failed: %s (%s)", exc.message, exc.status)
        return JSONResponse(
            {"detail": "Temporal is unavailable, try again"}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE
        )
