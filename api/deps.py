"""Shared dependencies: settings, the process's Temporal client, the caller's registry, auth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from domain.delivery import DEFAULT_ACCOUNT
from infra.network_guard import check_url
from infra.tokens import same_token
from services.delivery_log import DeliveryLog
from services.endpoints import EndpointRegistry
from services.flow import EndpointFlow
from services.ingest import EventIngest
from settings import Settings

_bearer = HTTPBearer(auto_error=False, description="The token set in WEBHOOKS_API_TOKEN")

# Every dependency here is `async def`, though none awaits: FastAPI runs a plain `def` one in
# a thread of its pool, a hop per dependency and request that cost more than the work.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[Client, Depends(get_client)]


async def authenticated_account(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """The caller's account, named by its bearer token; a 401 without a known one."""
    tokens = settings.account_tokens()
    if not tokens:
        return DEFAULT_ACCOUNT
    given = credentials.credentials if credentials else ""
    account = None
    for name, token in tokens:  # every token is compared: the time taken names none
        if same_token(given, token.get_secret_value()):
            account = name
    if account is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return account


AccountDep = Annotated[str, Depends(authenticated_account)]


async def get_registry(
    request: Request, client: ClientDep, settings: SettingsDep, account: AccountDep
) -> EndpointRegistry:
    state = request.app.state
    return EndpointRegistry(
        client, settings.task_queue, account, state.registry_snapshots, state.secrets, state.update_slots
    )


RegistryDep = Annotated[EndpointRegistry, Depends(get_registry)]


async def get_endpoint_flow(
    request: Request, client: ClientDep, settings: SettingsDep, account: AccountDep
) -> EndpointFlow:
    return EndpointFlow(client, settings.task_queue, account, request.app.state.update_slots)


EndpointFlowDep = Annotated[EndpointFlow, Depends(get_endpoint_flow)]


async def get_ingest(
    client: ClientDep, settings: SettingsDep, account: AccountDep, registry: RegistryDep, flow: EndpointFlowDep
) -> EventIngest:
    return EventIngest(client, settings.task_queue, account, registry, flow)


IngestDep = Annotated[EventIngest, Depends(get_ingest)]


async def get_delivery_log(client: ClientDep, settings: SettingsDep, account: AccountDep) -> DeliveryLog:
    return DeliveryLog(client, account, settings.temporal_ui_url)


DeliveryLogDep = Annotated[DeliveryLog, Depends(get_delivery_log)]


async def _any_destination(url: str) -> None:
    return None


async def get_destination_check(request: Request, settings: SettingsDep) -> Callable[[str], Awaitable[None]]:
    """Refuses endpoint URLs on private networks (ForbiddenDestination), unless they are allowed."""
    if settings.allow_private_networks:
        return _any_destination
    resolve = request.app.state.resolve

    async def check(url: str) -> None:
        await check_url(url, resolve)

    return check


DestinationCheckDep = Annotated[Callable[[str], Awaitable[None]], Depends(get_destination_check)]
