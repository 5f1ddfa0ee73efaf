"""The FastAPI application: `uvicorn --factory api.app:create_app`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import errors
from api.deps import require_token
from api.routers import deliveries, endpoints, events, health
from runtime.temporal import connect
from settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.api_token is None:
            log.warning("WEBHOOKS_API_TOKEN is not set: the API accepts every caller (local use only)")
        app.state.settings = settings
        app.state.temporal = await connect(settings, lazy=True)
        yield

    app = FastAPI(
        title="Webhook delivery service",
        version="1.0.0",
        summary="Durable ShippyPro-style webhooks on Temporal: endpoints, events and their delivery log.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(health.router)
    for router in (endpoints.router, events.router, deliveries.router):
        app.include_router(router, dependencies=[Depends(require_token)])
    return app
