"""What the endpoint registry workflow (workflows/endpoint_registry.py) is started with,
asked and told: its state across continue-as-new, its updates' and signals' arguments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel

from domain.endpoints import Endpoint, EndpointPatch
from domain.secrets import Sealed, SealedOr
from domain.signing import Scheme


class RegistryState(BaseModel):
    account: str
    endpoints: dict[str, Endpoint] = {}
    version: int = 0


class EndpointEdit(BaseModel):
    endpoint_id: str
    patch: EndpointPatch


class EndpointThrottle(BaseModel):
    """A receiver asked for a pause: no POST to the endpoint before `until`."""

    endpoint_id: str
    until: datetime
    url: str | None = None  # the receiver's (None: sent before reports named it)


class EndpointPostsFailing(BaseModel):
    """A POST to the endpoint failed like an outage (EndpointHealth.begins_failing_posts)."""

    endpoint_id: str
    at: datetime  # when that POST began
    url: str  # the receiver's


class EndpointGone(BaseModel):
    """The receiver answered `410 Gone` to a delivery: it wants no more webhooks."""

    endpoint_id: str
    delivery_id: str
    at: datetime
    url: str | None = None  # the receiver's (None: sent before reports named it)


class SecretRotation(BaseModel):
    """A new signing secret or key pair (made by the caller: workflows have no secure randomness),
    the secret or private key sealed by it."""

    endpoint_id: str
    secret: Annotated[str | Sealed, SealedOr(str)]  # plain in histories written before sealing
    grace_seconds: float  # how long the replaced secret keeps signing
    scheme: Scheme = Scheme.HMAC  # histories written before v1a rotate HMAC secrets only
    public_key: str | None = None  # v1a: whpk_…


class PlainSecretsSealed(BaseModel):
    """One endpoint's secrets that a registry written before sealing holds in clear, sealed by a
    client holding WEBHOOKS_SECRETS_KEY; signing secrets by their `created_at`."""

    password: Sealed | None = None
    header_value: Sealed | None = None
    signing_secrets: dict[str, Sealed] = {}


class PlainSecretsSealing(BaseModel):
    endpoints: dict[str, PlainSecretsSealed]


def sealed_where_plain(endpoint: Endpoint, sealed: PlainSecretsSealed) -> Endpoint | None:
    """The endpoint with the secrets it still holds in clear replaced by their sealed form; None
    when none is left. A secret still in clear is the one the sealer read: since sealing, every
    change brings sealed secrets only."""
    changes: dict[str, object] = {}
    if endpoint.auth and sealed.password and not isinstance(endpoint.auth.password, Sealed):
        changes["auth"] = endpoint.auth.model_copy(update={"password": sealed.password})
    if endpoint.custom_header and sealed.header_value and not isinstance(endpoint.custom_header.value, Sealed):
        changes["custom_header"] = endpoint.custom_header.model_copy(update={"value": sealed.header_value})
    signing = [
        s.model_copy(update={"secret": sealed.signing_secrets[s.created_at.isoformat()]})
        if not isinstance(s.secret, Sealed) and s.created_at.isoformat() in sealed.signing_secrets
        else s
        for s in endpoint.signing_secrets
    ]
    if signing != endpoint.signing_secrets:
        changes["signing_secrets"] = signing
    return endpoint.model_copy(update=changes) if changes else None
