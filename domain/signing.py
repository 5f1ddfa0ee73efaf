"""Signed webhooks, per the Standard Webhooks spec, in its two schemes.

- `v1`: `webhook-signature: v1,<base64 HMAC-SHA256>`, keyed with a shared
  `whsec_` secret (the base64 part, decoded).
- `v1a`: `webhook-signature: v1a,<base64 Ed25519 signature>`, made with a
  private key that never leaves the service; receivers verify with its
  `whpk_` public key (base64 of the 32 raw bytes, RFC 8032).

Both sign `{webhook-id}.{webhook-timestamp}.{body}`. During a rotation the old
secret or key signs too, whichever its scheme, so a receiver holding either
verifies; signatures are separated by spaces.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel

from domain.secrets import Reveal, Sealed, SealedOr, SecretField

SECRET_PREFIX = "whsec_"
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"
_ED25519_KEY_BYTES = 32


class Scheme(StrEnum):
    HMAC = "v1"  # symmetric: the receiver holds the same secret
    ED25519 = "v1a"  # asymmetric: the receiver holds the public key only


# Where each scheme's secret is sealed: a sealed private key opens only as one, never as an HMAC secret.
SEALED_AS: dict[Scheme, SecretField] = {Scheme.HMAC: "signing_secret", Scheme.ED25519: "signing_key"}


class SigningSecret(BaseModel):
    # v1: whsec_<base64 of 32 random bytes>; v1a: whsk_<base64 of the Ed25519 private key>. Sealed by the API.
    secret: Annotated[str | Sealed, SealedOr(str)]
    created_at: datetime
    expires_at: datetime | None = None  # set when a newer secret replaces it
    scheme: Scheme = Scheme.HMAC  # registries written before v1a hold HMAC secrets only
    public_key: str | None = None  # v1a: whpk_…, shown on the endpoint

    def active_at(self, moment: datetime) -> bool:
        return self.expires_at is None or moment < self.expires_at


@dataclass(frozen=True)
class NewSecret:
    """A signing secret as the API makes it (workflows have no secure randomness), before it is sealed."""

    scheme: Scheme
    secret: str = field(repr=False)  # v1: shown once to the merchant; v1a: the private key, never shown
    public_key: str | None = None  # v1a: what the merchant is shown instead


def new_secret() -> str:
    """32 random bytes for HMAC-SHA256."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_key_pair() -> NewSecret:
    private = Ed25519PrivateKey.generate().private_bytes_raw()
    text = PRIVATE_KEY_PREFIX + base64.b64encode(private).decode()
    return NewSecret(scheme=Scheme.ED25519, secret=text, public_key=public_key_of(text))


def new_signing_secret(scheme: Scheme) -> NewSecret:
    if scheme is Scheme.ED25519:
        return new_key_pair()
    return NewSecret(scheme=Scheme.HMAC, secret=new_secret())


def _private_key(text: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text.removeprefix(PRIVATE_KEY_PREFIX)))


def public_key_of(private_key: str) -> str:
    raw = _private_key(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()


def is_public_key(text: str) -> bool:
    """`whpk_` and the base64 of 32 bytes: what a v1a rotation must carry."""
    if not text.startswith(PUBLIC_KEY_PREFIX):
        return False
    try:
        return len(base64.b64decode(text.removeprefix(PUBLIC_KEY_PREFIX), validate=True)) == _ED25519_KEY_BYTES
    except binascii.Error:
        return False


def _signed_content(webhook_id: str, timestamp: int, body: str) -> bytes:
    return f"{webhook_id}.{timestamp}.{body}".encode()


def hmac_signature(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, _signed_content(webhook_id, timestamp, body), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def ed25519_signature(private_key: str, webhook_id: str, timestamp: int, body: str) -> str:
    signed = _private_key(private_key).sign(_signed_content(webhook_id, timestamp, body))
    return "v1a," + base64.b64encode(signed).decode()


def signature(scheme: Scheme, secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    sign = ed25519_signature if scheme is Scheme.ED25519 else hmac_signature
    return sign(secret, webhook_id, timestamp, body)


def signature_header(
    secrets: list[SigningSecret], reveal: Reveal, webhook_id: str, timestamp: int, body: str, now: datetime
) -> str:
    """One signature per secret still active, newest first; each opened only here, at send time."""
    active = sorted((s for s in secrets if s.active_at(now)), key=lambda s: s.created_at, reverse=True)
    return " ".join(
        signature(s.scheme, reveal(s.secret, SEALED_AS[s.scheme]), webhook_id, timestamp, body) for s in active
    )


def verify_signature(key: str, webhook_id: str, timestamp: int, body: str, header: str) -> bool:
    """What a receiver checks: a signature in `header` made with `key`, a `whsec_` secret or a `whpk_` public key.

    The header may carry several (a rotation, or both schemes while switching); one of the key's scheme is enough.
    How old `timestamp` may be is the receiver's choice (Standard Webhooks suggests 5 minutes).
    """
    content = _signed_content(webhook_id, timestamp, body)
    for scheme, _, encoded in (part.partition(",") for part in header.split()):
        if scheme == Scheme.HMAC and key.startswith(SECRET_PREFIX):
            if hmac.compare_digest(f"{scheme},{encoded}", hmac_signature(key, webhook_id, timestamp, body)):
                return True
        elif scheme == Scheme.ED25519 and is_public_key(key):
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key.removeprefix(PUBLIC_KEY_PREFIX)))
            try:
                public.verify(base64.b64decode(encoded), content)
                return True
            except (InvalidSignature, binascii.Error, ValueError):
                continue  # another key's signature, during a rotation, or not base64
    return False
