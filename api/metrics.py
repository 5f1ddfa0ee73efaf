"""Prometheus metrics of the API, served at `/metrics`."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

REQUESTS = Counter("webhooks_api_requests", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram("webhooks_api_request_seconds", "Time to answer an HTTP request", ["method", "route"])
EVENTS_ACCEPTED = Counter("webhooks_events_accepted", "Events accepted (202)", ["event"])

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The route template, not the path: ids would make a series per delivery.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        return response
