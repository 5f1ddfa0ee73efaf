"""Encryption of everything the service stores in Temporal (AES-256-GCM payload codec).

Each encrypted payload names its key in the metadata, so keys can rotate: the
current key encrypts, the current and the old ones decrypt. Payloads written
before encryption was on are read as they are.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE_BYTES = 12


def new_key() -> str:
    """A fresh key in the form WEBHOOKS_ENCRYPTION_KEY takes: 32 random bytes, base64url."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def parse_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("an encryption key must be base64url text") from None
    if len(key) != 32:
        raise ValueError(f"an encryption key must be 32 bytes (AES-256), this one is {len(key)}")
    return key


def key_id(key: bytes) -> str:
    """Names a key without revealing it."""
    return hashlib.sha256(b"webhooks-key-id:" + key).hexdigest()[:16]


class AesGcmCodec(PayloadCodec):
    def __init__(self, key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        self._key_id = key_id(key).encode()
        self._cipher = AESGCM(key)
        self._ciphers = {key_id(k).encode(): AESGCM(k) for k in (key, *old_keys)}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        encrypted = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = self._cipher.encrypt(nonce, payload.SerializeToString(), None)
            metadata = {"encoding": ENCODING, KEY_ID: self._key_id}
            encrypted.append(Payload(metadata=metadata, data=nonce + sealed))
        return encrypted

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(p) for p in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        kid = payload.metadata.get(KEY_ID, b"")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise ValueError(f"payload encrypted with unknown key {kid.decode(errors='replace')}")
        try:
            plain = cipher.decrypt(payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:], None)
        except InvalidTag:
            raise ValueError("payload failed authentication: wrong key or tampered data") from None
        return Payload.FromString(plain)


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The service's converter: pydantic models, encrypted; failure messages encrypted too."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
