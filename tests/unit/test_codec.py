"""The payload codec: encrypted at rest, readable under rotated keys, tamper-evident."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import Payload

from infra.codec import ENCODING, KEY_ID, AesGcmCodec, key_id, new_key, parse_key

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"password": "s3cret"}')


async def test_round_trip_hides_the_data_and_names_the_key():
    key = parse_key(new_key())
    codec = AesGcmCodec(key)

    [sealed] = await codec.encode([PLAIN])
    [opened] = await codec.decode([sealed])

    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == key_id(key).encode()
    assert b"s3cret" not in sealed.SerializeToString()
    assert opened == PLAIN


async def test_after_rotation_old_data_still_decodes_and_new_data_uses_the_new_key():
    old, new = parse_key(new_key()), parse_key(new_key())
    [written_before] = await AesGcmCodec(old).encode([PLAIN])
    rotated = AesGcmCodec(new, old_keys=[old])

    [written_after] = await rotated.encode([PLAIN])

    assert await rotated.decode([written_before]) == [PLAIN]
    assert written_after.metadata[KEY_ID] == key_id(new).encode()
    with pytest.raises(ValueError, match="unknown key"):
        await AesGcmCodec(old).decode([written_after])


async def test_tampered_data_is_refused_and_unencrypted_payloads_pass_through():
    codec = AesGcmCodec(parse_key(new_key()))
    [sealed] = await codec.encode([PLAIN])
    tampered = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))

    with pytest.raises(ValueError, match="authentication"):
        await codec.decode([tampered])
    assert await codec.decode([PLAIN]) == [PLAIN]


@pytest.mark.parametrize("text", ["short", "!!!not base64!!!", "AAAA"])
def test_a_key_must_be_32_bytes_of_base64url(text):
    with pytest.raises(ValueError, match="encryption key"):
        parse_key(text)
