"""The codec server on its own listener, for operators: `uvicorn --factory api.codec_server:create_codec_app`.

It decrypts whatever the service stores in Temporal, for every account, so it
never shares the merchant API's port or tokens (`make run` serves it on
127.0.0.1:WEBHOOKS_CODEC_PORT, compose publishes it on the host's loopback).
Who may call it:
- with `WEBHOOKS_OPERATOR_TOKEN`, only `Authorization: Bearer <operator token>`
  (the `temporal` CLI's `--codec-auth`); merchant tokens are refused;
- without it, whoever reaches the port: the operator network. The Temporal Web
  UI sends no credential of its own (its "pass access token" forwards only the
  token of its OIDC login, over HTTPS), so this is how it decodes. Requests must
  then name a loopback host, so a web page cannot reach it by DNS rebinding.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.trustedhost import TrustedHostMiddleware

from api import errors
from api.routers import codec
from infra.logs import configure_json_logging
from infra.tokens import same_token
from settings import Settings, get_settings

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="The token set in WEBHOOKS_OPERATOR_TOKEN")
LOOPBACK_HOSTS = ["localhost", "127.0.0.1"]


def ui_origins(ui_url: str) -> list[str]:
    """The Web UI's origin, under both names a local browser may use for it."""
    parts = urlsplit(ui_url)
    origins = {f"{parts.scheme}://{parts.netloc}"}
    if parts.hostname in ("localhost", "127.0.0.1"):
        port = f":{parts.port}" if parts.port else ""
        origins |= {f"{parts.scheme}://localhost{port}", f"{parts.scheme}://127.0.0.1{port}"}
    return sorted(origins)


async def operator_only(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """A 401 unless the caller holds the operator token, when one is configured."""
    expected = request.app.state.settings.operator_token
    if expected is None:
        return
    given = credentials.credentials if credentials else ""
    if not same_token(given, expected.get_secret_value()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or wrong operator token", headers={"WWW-Authenticate": "Bearer"}
        )


def create_codec_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.log_format == "json":
            configure_json_logging()
        if settings.operator_token is None:
            log.warning(
                "WEBHOOKS_OPERATOR_TOKEN is not set: the codec server decodes for whoever reaches its port; "
                "keep it on the operator network (loopback)"
            )
        yield

    app = FastAPI(title="Codec server (operators)", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.codec = settings.codec()
    # The Web UI calls the codec from the operator's browser, from its own origin.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=ui_origins(settings.temporal_ui_url),
        allow_methods=["POST"],
        allow_headers=["content-type", "x-namespace", "authorization"],
        allow_credentials=True,
    )
    if settings.operator_token is None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_HOSTS)
    app.include_router(codec.router, dependencies=[Depends(operator_only)])
    errors.install(app)  # its 401s, 404s and 405s in the merchant API's shape too
    return app
