"""`/v1/endpoints`: register, read, edit, delete and test the URLs that receive webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict

from api.deps import (
    AccountDep,
    ClientDep,
    DeliveryLogDep,
    DestinationCheckDep,
    EndpointFlowDep,
    RegistryDep,
    SettingsDep,
)
from api.errors import documented, invalid_input
from api.json_body import StrictJsonRoute, no_key_given_twice
from domain.activity_contract import RecoveryRequest, RecoveryResult
from domain.endpoints import EndpointPatchRequest, EndpointRequest, EndpointView
from domain.events import EventType
from domain.flow import Ordering
from domain.signing import Scheme, new_signing_secret
from domain.validation import UtcInstant, check_within_log
from infra.temporal import NamespaceRetention
from services.deliveries import ensure_first_connection, send_test
from services.delivery_log import DeliveryDetail
from services.reruns import EndpointDisabledForReruns
from services.reruns import recover_endpoint as run_recovery

router = APIRouter(
    prefix="/v1/endpoints",
    tags=["endpoints"],
    route_class=StrictJsonRoute,
    dependencies=[Depends(no_key_given_twice)],
)


@router.post("", status_code=status.HTTP_201_CREATED, responses=documented(401, 413, 422, 503))
async def create_endpoint(
    spec: EndpointRequest,
    registry: RegistryDep,
    check: DestinationCheckDep,
    client: ClientDep,
    settings: SettingsDep,
    account: AccountDep,
) -> EndpointView:
    """Register an endpoint. It is sent an ORDER_SHIPPED sample at once (its first connection),
    which is in the log when this answers."""
    await check(spec.url)
    created = await registry.create(spec)
    await ensure_first_connection(client, settings.task_queue, account, created)
    return created


@router.get("", responses=documented(401, 503))
async def list_endpoints(registry: RegistryDep) -> list[EndpointView]:
    return await registry.endpoints()


@router.get("/{endpoint_id}", responses=documented(401, 404, 503))
async def get_endpoint(endpoint_id: str, registry: RegistryDep) -> EndpointView:
    return await registry.get(endpoint_id)


@router.patch("/{endpoint_id}", responses=documented(401, 404, 413, 422, 503))
async def update_endpoint(
    endpoint_id: str,
    patch: EndpointPatchRequest,
    registry: RegistryDep,
    check: DestinationCheckDep,
    flow: EndpointFlowDep,
) -> EndpointView:
    """Change any subset of the fields; `null` removes `auth`, `custom_header` or `rate_limit`."""
    if patch.url is not None:
        await check(patch.url)
    updated = await registry.update(endpoint_id, patch)
    if "ordering" in patch.model_fields_set and updated.ordering == Ordering.NONE:
        # Deliveries waiting for their order's turn would find out when they next ask (up to
        # minutes later): told now, they go at once.
        await flow.ordering_off(endpoint_id)
    return updated


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, responses=documented(401, 404, 503))
async def delete_endpoint(endpoint_id: str, registry: RegistryDep, flow: EndpointFlowDep) -> Response:
    """Delete an endpoint: it receives nothing more, and its pending retries stop."""
    await registry.delete(endpoint_id)
    await flow.ordering_off(endpoint_id)  # deliveries waiting in its FIFO queues stop now, too
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class TestRequest(BaseModel):
    """What `POST …/test` may carry; no body at all sends the seed's TRACKING_UPDATE, as before."""

    model_config = ConfigDict(extra="forbid")

    event: Literal["ORDER_SHIPPED", "ORDER_ERROR", "TRACKING_UPDATE"] = "TRACKING_UPDATE"


# How much longer than one POST may take a test is waited for, before it is answered pending.
TEST_WAIT_BEYOND_HTTP_TIMEOUT = 20.0
_STILL_PENDING: dict[int | str, dict[str, Any]] = {
    202: {"model": DeliveryDetail, "description": "Still pending: its record so far"}
}


@router.post(
    "/{endpoint_id}/test",
    responses=documented(401, 404, 409, 413, 422, 503) | _STILL_PENDING,
)
async def test_endpoint(
    endpoint_id: str,
    registry: RegistryDep,
    client: ClientDep,
    settings: SettingsDep,
    account: AccountDep,
    log: DeliveryLogDep,
    response: Response,
    body: TestRequest | None = None,
) -> DeliveryDetail:
    """Send a sample of `event` (the seed's TRACKING_UPDATE by default) once, wait, and show what
    was sent and received. It is never retried, and goes even to a disabled endpoint; while
    the receiver has asked for a pause (429, 502, 503, 504), it is a 409 with Retry-After.
    The wait is bounded: a test still pending after the HTTP timeout and 20 s more (held for
    its rate-limit slot, or no worker running) is answered `202`, pending, its next POST's time."""
    event = EventType((body or TestRequest()).event)
    wait = settings.http_timeout + TEST_WAIT_BEYOND_HTTP_TIMEOUT
    test_id, record = await send_test(
        client, settings.task_queue, account, registry, endpoint_id, event, wait_seconds=wait
    )
    if record is None:
        response.status_code = status.HTTP_202_ACCEPTED
        return await log.detail(test_id)
    return DeliveryDetail(**dict(record), web_ui_url=log.web_ui_link(record.id))


class SigningRequest(BaseModel):
    """What `POST …/secret` may carry; no body at all is an HMAC secret, as before v1a."""

    model_config = ConfigDict(extra="forbid")

    scheme: Scheme = Scheme.HMAC  # v1: an HMAC-SHA256 secret; v1a: an Ed25519 key pair


class NewSigningSecret(BaseModel):
    secret: str  # shown this once
    endpoint: EndpointView


class NewSigningKey(BaseModel):
    public_key: str  # whpk_…; the private key never leaves the service
    endpoint: EndpointView


@router.post("/{endpoint_id}/secret", responses=documented(401, 404, 413, 422, 503))
async def rotate_signing_secret(
    endpoint_id: str, registry: RegistryDep, settings: SettingsDep, body: SigningRequest | None = None
) -> NewSigningSecret | NewSigningKey:
    """Start signing requests with a new HMAC secret (`whsec_…`, shown only in this answer) or,
    with `{"scheme": "v1a"}`, a new Ed25519 key pair (its public key `whpk_…` answered).

    A secret or key it replaces, of either scheme, keeps signing beside it for
    WEBHOOKS_SIGNING_SECRET_GRACE_HOURS, so receivers can switch without losing a webhook.
    """
    new = new_signing_secret((body or SigningRequest()).scheme)
    grace = settings.signing_secret_grace_hours * 3600
    endpoint = await registry.rotate_signing_secret(endpoint_id, new, grace)
    if new.public_key is not None:
        return NewSigningKey(public_key=new.public_key, endpoint=endpoint)
    return NewSigningSecret(secret=new.secret, endpoint=endpoint)


@router.delete("/{endpoint_id}/secret", responses=documented(401, 404, 503))
async def stop_signing(endpoint_id: str, registry: RegistryDep) -> EndpointView:
    """Stop signing requests to this endpoint; every secret is forgotten."""
    return await registry.stop_signing(endpoint_id)


class RecoverySince(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as every body: a misspelt field is refused, not ignored

    since: UtcInstant


@router.post("/{endpoint_id}/recover", responses=documented(401, 404, 409, 413, 422, 503))
async def recover_endpoint(
    endpoint_id: str,
    body: RecoverySince,
    request: Request,
    registry: RegistryDep,
    client: ClientDep,
    settings: SettingsDep,
    account: AccountDep,
) -> RecoveryResult:
    """Re-run every failed delivery of the endpoint since `since`, each at most once, and say how many.

    `since` must lie within the log: not in the future, not before the namespace's retention.
    A disabled endpoint is a 409: enable it first, or its re-runs would only be skipped.
    """
    retention: NamespaceRetention = request.app.state.log_retention
    try:
        check_within_log(body.since, datetime.now(UTC), await retention.of(client))
    except ValueError as err:
        raise invalid_input({("body", "since"): str(err)}) from None
    if (await registry.get(endpoint_id)).disabled:
        raise EndpointDisabledForReruns
    recovery = RecoveryRequest(account=account, endpoint_id=endpoint_id, since=body.since)
    return await run_recovery(client, settings.task_queue, recovery)
