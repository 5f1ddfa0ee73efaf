"""Temporal's refusals as the API answers them: a limit is not an outage, nor is an invalid request."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from temporalio.service import RPCError, RPCStatusCode

from api.errors import install


@pytest.mark.parametrize(
    ("code", "detail", "retry_after"),
    [
        (RPCStatusCode.RESOURCE_EXHAUSTED, "Temporal is busy (a limit on requests at once was reached)", "1"),
        (RPCStatusCode.UNAVAILABLE, "Temporal is unavailable, try again", None),
    ],
)
async def test_a_temporal_limit_is_a_503_saying_so_with_when_to_retry(
    code: RPCStatusCode, detail: str, retry_after: str | None
) -> None:
    app = FastAPI()
    install(app)

    @app.get("/refused")
    async def refused() -> None:
        raise RPCError("limit on number of concurrent in-flight updates has been reached (10)", code, b"")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        answer = await http.get("/refused")

    assert answer.status_code == 503
    assert answer.json()["detail"].startswith(detail)
    assert answer.headers.get("retry-after") == retry_after


async def test_a_request_temporal_refuses_as_invalid_is_a_400_not_a_503_to_retry(caplog) -> None:
    app = FastAPI()
    install(app)

    @app.get("/refused")
    async def refused() -> None:
        raise RPCError("WorkflowId length exceeds limit.", RPCStatusCode.INVALID_ARGUMENT, b"")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        answer = await http.get("/refused")

    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("Temporal refused this request as invalid")
    assert "retry-after" not in answer.headers
    assert "WorkflowId length exceeds limit" in caplog.text  # the operator learns which limit
