"""Prometheus metrics of the API, served at `/metrics`."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.routing import Mount

REQUESTS = Counter("webhooks_api_requests", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram("webhooks_api_request_seconds", "Time to answer an HTTP request", ["method", "route"])
EVENTS_ACCEPTED = Counter("webhooks_events_accepted", "Events accepted (202)", ["event"])

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _route(request: Request, path: str) -> str:
    """The route template, not the path: ids would make a series per delivery. The files of a mount
    (the dashboard's `/ui`, `/docs`) are one route each, `/ui/{path}`; `unmatched` is what no route
    or mount serves."""
    route = request.scope.get("route")
    if route is not None and not isinstance(route, Mount):
        return str(route.path)
    for mount in request.app.routes:
        if isinstance(mount, Mount) and (path == mount.path or path.startswith(mount.path + "/")):
            return f"{mount.path}/{{path}}"
    return "unmatched"


class MetricsMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        # The path the routes see, taken before routing: a mount changes the scope's root_path.
        path = request.scope["path"].removeprefix(request.scope.get("root_path", ""))
        response = await call_next(request)
        route = _route(request, path)
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        return response
