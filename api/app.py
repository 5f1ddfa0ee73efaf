"""The FastAPI application: `uvicorn --factory api.app:create_app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import errors, metrics
from api.deps import authenticated_account
from api.limits import BodySizeLimit
from api.metrics import MetricsMiddleware
from api.routers import codec, deliveries, endpoints, events, health, ui
from infra.logs import configure_json_logging
from infra.network_guard import Resolver, system_resolver
from infra.temporal import NamespaceRetention, connect
from services.endpoints import SnapshotCache
from settings import Settings, get_settings

log = logging.getLogger(__name__)


def ui_origins(ui_url: str) -> list[str]:
    """The Web UI's origin, under both names a local browser may use for it."""
    parts = urlsplit(ui_url)
    origins = {f"{parts.scheme}://{parts.netloc}"}
    if parts.hostname in ("localhost", "127.0.0.1"):
        port = f":{parts.port}" if parts.port else ""
        origins |= {f"{parts.scheme}://localhost{port}", f"{parts.scheme}://127.0.0.1{port}"}
    return sorted(origins)


def create_app(settings: Settings | None = None, resolve: Resolver = system_resolver) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.log_format == "json":
            configure_json_logging()
        if not settings.account_tokens():
            log.warning("WEBHOOKS_API_TOKEN is not set: the API accepts every caller (local use only)")
        app.state.settings = settings
        app.state.codec = settings.codec()
        app.state.resolve = resolve
        app.state.temporal = await connect(settings, lazy=True)
        app.state.registry_snapshots = SnapshotCache()
        app.state.log_retention = NamespaceRetention()
        yield

    app = FastAPI(
        title="Webhook delivery service",
        version="1.0.0",
        summary="Durable ShippyPro-style webhooks on Temporal: endpoints, events and their delivery log.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.openapi = errors.without_fastapi_422(app)  # type: ignore[method-assign]
    app.add_middleware(BodySizeLimit)
    app.add_middleware(MetricsMiddleware)
    # The Web UI calls the codec endpoint from the browser, from its own origin.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=ui_origins(settings.temporal_ui_url),
        allow_methods=["POST"],
        allow_headers=["content-type", "x-namespace", "authorization"],
        allow_credentials=True,
    )
    app.include_router(health.router)
    app.include_router(metrics.router)
    for router in (endpoints.router, events.router, deliveries.router):
        app.include_router(router, dependencies=[Depends(authenticated_account)])
    app.include_router(
        codec.router, dependencies=[Depends(authenticated_account)], responses=errors.documented(401, 413, 422)
    )
    # The dashboard's files are public; everything it shows comes from /v1, with the token.
    app.include_router(ui.router)
    app.mount("/ui", ui.dashboard_files(), name="ui")
    return app
