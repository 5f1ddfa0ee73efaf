"""Signed webhooks, per the Standard Webhooks spec: `webhook-signature: v1,<base64 HMAC-SHA256>`.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the key is the
secret's base64 part, decoded. During a rotation the old secret signs too, so a
receiver holding either verifies; signatures are separated by spaces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel

from domain.secrets import Reveal, Sealed, SealedOr

SECRET_PREFIX = "whsec_"


class SigningSecret(BaseModel):
    secret: Annotated[str | Sealed, SealedOr(str)]  # whsec_<base64 of 32 random bytes>, sealed by the API
    created_at: datetime
    expires_at: datetime | None = None  # set when a newer secret replaces it

    def active_at(self, moment: datetime) -> bool:
        return self.expires_at is None or moment < self.expires_at


def new_secret() -> str:
    """32 random bytes: never made in a workflow, which has no secure randomness."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{webhook_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def signature_header(
    secrets: list[SigningSecret], reveal: Reveal, webhook_id: str, timestamp: int, body: str, now: datetime
) -> str:
    """One signature per secret still active, newest first."""
    active = sorted((s for s in secrets if s.active_at(now)), key=lambda s: s.created_at, reverse=True)
    return " ".join(signature(reveal(s.secret, "signing_secret"), webhook_id, timestamp, body) for s in active)
