"""Sealing endpoint credentials with WEBHOOKS_SECRETS_KEY (AES-256-GCM), held by the API and the workers only.

The payload codec's key (WEBHOOKS_ENCRYPTION_KEY) is also the codec server's,
which operators use to read histories; this one is not, so a credential the
API sealed stays ciphertext in every decoded history and query answer. Each
sealed value is bound to its account and field (the AEAD's associated data):
moved to another account's endpoint, or into another field, it does not open.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.secrets import Reveal, Sealed, SecretField
from infra.codec import key_id

_NONCE_BYTES = 12


def _bound_to(account: str, field: SecretField) -> bytes:
    return f"webhooks-secret\x00{account}\x00{field}".encode()


class UnopenableSecret(ValueError):
    """A sealed secret this process's keys do not open: its configuration's fault, not the data's
    owner's. Says which field and key id, never the secret."""


class SecretBox:
    def __init__(self, key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        self._key_id = key_id(key)
        self._cipher = AESGCM(key)
        self._ciphers = {key_id(k): AESGCM(k) for k in (key, *old_keys)}

    def seal(self, plain: str, account: str, field: SecretField) -> Sealed:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher.encrypt(nonce, plain.encode(), _bound_to(account, field))
        return Sealed(key_id=self._key_id, ciphertext=base64.urlsafe_b64encode(nonce + sealed).decode())

    def open(self, value: str | Sealed, account: str, field: SecretField) -> str:
        """The secret's text. Plain text (a registry written before sealing) is returned as it is."""
        if not isinstance(value, Sealed):
            return value
        cipher = self._ciphers.get(value.key_id)
        if cipher is None:
            raise UnopenableSecret(f"{field} is sealed with unknown key {value.key_id}: is WEBHOOKS_SECRETS_KEY right?")
        try:
            data = base64.urlsafe_b64decode(value.ciphertext)
            return cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], _bound_to(account, field)).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise UnopenableSecret(f"{field} failed authentication: tampered, or sealed for another account") from None

    def reveal_for(self, account: str) -> Reveal:
        """What the worker hands the wire code: opens one account's secrets."""
        return lambda value, field: self.open(value, account, field)
