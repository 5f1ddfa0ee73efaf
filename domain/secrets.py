"""Endpoint credentials as the registry keeps them: sealed by the API, opened only by the worker at send time.

A merchant gives a secret in clear (the Basic-auth password, the custom
header's value; the API makes signing secrets). The API seals it with
WEBHOOKS_SECRETS_KEY, which only the API and the workers hold, before it
reaches the registry workflow, so the registry's state, its query answers and
its update arguments hold ciphertext: an operator decoding them with the
payload codec sees no secret. The sealing itself is `infra.secrets`.

Registries written before sealing hold plain text in the same fields; a
secret field therefore reads either form (`str | Sealed`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler, TypeAdapter, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from domain.plain_words import reason

# Which secret a sealed value is: part of what it is bound to, with the account.
# `signing_secret` is a v1 HMAC secret, `signing_key` a v1a Ed25519 private key.
SecretField = Literal["auth.password", "custom_header.value", "signing_secret", "signing_key"]


class Sealed(BaseModel):
    """A secret sealed with AES-256-GCM under WEBHOOKS_SECRETS_KEY, bound to its account and field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str  # which key sealed it, so keys can rotate
    ciphertext: str  # base64url of nonce + ciphertext + tag


# What the worker uses to turn a stored secret into the text it sends.
Reveal = Callable[[str | Sealed, SecretField], str]


class SealedOr:
    """`Annotated[str | Sealed, SealedOr(plain)]`: a secret as the merchant gives it, validated as
    `plain`, or sealed. Its JSON schema is the plain one: the API documents and takes text."""

    def __init__(self, plain: Any) -> None:
        self._plain: TypeAdapter[str] = TypeAdapter(plain)

    def _validate(self, value: Any) -> str | Sealed:
        if isinstance(value, Sealed):
            return value
        # Any other object is refused below as the plain type refuses non-text, not by naming
        # the sealed form's fields, which the API does not take.
        if isinstance(value, dict):
            with contextlib.suppress(ValidationError):
                return Sealed.model_validate(value)
        try:
            return self._plain.validate_python(value)
        except ValidationError as err:
            # The plain type's reason, on this field (and never the value: it is a secret).
            raise ValueError(reason(err.errors()[0])) from None

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self._validate, serialization=core_schema.plain_serializer_function_ser_schema(_dump)
        )

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return self._plain.json_schema()


def _dump(value: str | Sealed) -> str | dict[str, str]:
    return value.model_dump() if isinstance(value, Sealed) else value
