"""Shared dependencies: settings, the process's Temporal client, the caller's registry, auth."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from domain.delivery import DEFAULT_ACCOUNT
from runtime.delivery_log import DeliveryLog
from runtime.registry import EndpointRegistry
from settings import Settings

_bearer = HTTPBearer(auto_error=False, description="The token set in WEBHOOKS_API_TOKEN")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[Client, Depends(get_client)]


def require_token(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """The caller's account; a 401 unless it presents the configured bearer token."""
    expected = settings.api_token
    if expected is None:
        return DEFAULT_ACCOUNT
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return DEFAULT_ACCOUNT


AccountDep = Annotated[str, Depends(require_token)]


def get_registry(client: ClientDep, settings: SettingsDep, account: AccountDep) -> EndpointRegistry:
    return EndpointRegistry(client, settings.task_queue, account)


RegistryDep = Annotated[EndpointRegistry, Depends(get_registry)]


def get_delivery_log(client: ClientDep, settings: SettingsDep, account: AccountDep) -> DeliveryLog:
    return DeliveryLog(client, account, settings.temporal_ui_url)


DeliveryLogDep = Annotated[DeliveryLog, Depends(get_delivery_log)]
