"""Prometheus metrics of the API, served at `/metrics`."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import SettingsDep
from infra.tokens import same_token

_bearer = HTTPBearer(auto_error=False, description="The token set in WEBHOOKS_METRICS_TOKEN")

REQUESTS = Counter("webhooks_api_requests", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram("webhooks_api_request_seconds", "Time to answer an HTTP request", ["method", "route"])
EVENTS_ACCEPTED = Counter("webhooks_events_accepted", "Events accepted (202)", ["event"])


async def metrics_readers_only(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """The counts are every account's together, the platform's volume: with
    WEBHOOKS_METRICS_TOKEN, only its bearer reads them; without one, only an API open to every
    caller (no merchant tokens: local use) serves them."""
    expected = settings.metrics_token
    if expected is None:
        if settings.account_tokens():
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "metrics are read with WEBHOOKS_METRICS_TOKEN, which is not set"
            )
        return
    if not same_token(credentials.credentials if credentials else "", expected.get_secret_value()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or wrong metrics token", headers={"WWW-Authenticate": "Bearer"}
        )


router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_readers_only)])
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _route(scope: Scope, path: str) -> str:
    """The route template, not the path: ids would make a series per delivery. The files of a mount
    (the dashboard's `/ui`, `/docs`) are one route each, `/ui/{path}`; `unmatched` is what no route
    or mount serves."""
    route = scope.get("route")
    if route is not None and not isinstance(route, Mount):
        return str(route.path)
    for mount in scope["app"].routes:
        if isinstance(mount, Mount) and (path == mount.path or path.startswith(mount.path + "/")):
            return f"{mount.path}/{{path}}"
    return "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request by route and status. Plain ASGI: Starlette's
    BaseHTTPMiddleware runs the app in a task of its own and streams its answer through a
    memory channel, which costs every request more than the metrics themselves."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        # The path the routes see, taken before routing: a mount changes the scope's root_path.
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        status = 500  # what the client gets when the app fails before answering

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, observed_send)
        finally:
            route = _route(scope, path)
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
