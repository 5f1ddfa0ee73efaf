"""The API's request metrics, against a small ASGI app: counted by route template and status."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from api.metrics import MetricsMiddleware


async def _ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok", status_code=202)


async def _broken(request: Request) -> PlainTextResponse:
    raise RuntimeError("broken before answering")


def _count(route: str, status: str) -> float:
    labels = {"method": "GET", "route": route, "status": status}
    return REGISTRY.get_sample_value("webhooks_api_requests_total", labels) or 0.0


def _get(path: str) -> int:
    app = Starlette(routes=[Route("/items/{item_id}", _ok), Route("/broken", _broken)])
    app.add_middleware(MetricsMiddleware)

    async def call() -> int:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get(path)).status_code

    return asyncio.run(call())


def test_a_request_is_counted_by_its_route_template_and_status() -> None:
    before = _count("/items/{item_id}", "202")
    assert _get("/items/it-42") == 202
    assert _count("/items/{item_id}", "202") == before + 1


def test_an_app_that_fails_before_answering_is_counted_as_the_500_its_client_gets() -> None:
    before = _count("/broken", "500")
    assert _get("/broken") == 500
    assert _count("/broken", "500") == before + 1
