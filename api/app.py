"""The FastAPI application: `uvicorn --factory api.app:create_app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import errors, metrics
from api.deps import authenticated_account
from api.limits import BodySizeLimit
from api.metrics import MetricsMiddleware
from api.routers import deliveries, endpoints, events, health, ui
from api.routers.docs import mount_docs
from infra.logs import configure_json_logging
from infra.network_guard import Resolver, system_resolver
from infra.temporal import NamespaceRetention, UpdateSlots, connect
from infra.tracing import Tracing, tracing_from_environment
from services.endpoints import SnapshotCache
from settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, resolve: Resolver = system_resolver, tracing: Tracing | None = None
) -> FastAPI:
    """`tracing` defaults to the environment's: on only with OTEL_EXPORTER_OTLP_ENDPOINT set."""
    settings = settings or get_settings()
    tracing = tracing or tracing_from_environment("webhooks-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.log_format == "json":
            configure_json_logging()
        if not settings.account_tokens():
            log.warning("WEBHOOKS_API_TOKEN is not set: the API accepts every caller (local use only)")
        app.state.settings = settings
        app.state.secrets = settings.secret_box()  # seals the credentials merchants give
        app.state.resolve = resolve
        app.state.temporal = await connect(settings, lazy=True, tracing=tracing)
        app.state.registry_snapshots = SnapshotCache()
        app.state.update_slots = UpdateSlots()  # for every workflow it updates: registries, flow schedules
        app.state.log_retention = NamespaceRetention()
        yield
        if tracing:
            tracing.flush()

    app = FastAPI(
        title="Webhook delivery service",
        version="1.0.0",
        summary="Durable ShippyPro-style webhooks on Temporal: endpoints, events and their delivery log.",
        description=errors.REFUSALS,
        lifespan=lifespan,
        # FastAPI's /docs and /redoc load their scripts from a CDN: ours serves its own (mount_docs).
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    app.openapi = errors.without_fastapi_422(app)  # type: ignore[method-assign]
    app.add_middleware(BodySizeLimit)
    app.add_middleware(MetricsMiddleware)
    app.include_router(health.router)
    app.include_router(metrics.router)
    # No codec server here: it decrypts every account's data, so it has its own
    # listener for operators (api/codec_server.py), never the merchants' port.
    for router in (endpoints.router, events.router, deliveries.router):
        app.include_router(router, dependencies=[Depends(authenticated_account)])
    # The dashboard's files are public; everything it shows comes from /v1, with the token.
    app.include_router(ui.router)
    app.mount("/ui", ui.dashboard_files(), name="ui")
    mount_docs(app)
    if tracing:
        tracing.instrument_api(app)
    return app
