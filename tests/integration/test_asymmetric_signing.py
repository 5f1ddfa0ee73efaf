"""v1a (Ed25519) signatures end to end, checked as receivers check them.

Each signature is verified from what a receiver has only (the `whpk_` key the API
answered, the headers and the body it received) by two implementations other than
our signing code: `cryptography`'s Ed25519PublicKey.verify (OpenSSL, what a Python
receiver would use) and PyNaCl's VerifyKey (libsodium), which must agree. The
`standardwebhooks` package (the spec's reference library) verifies `v1` only
(1.1.0 skips every other version), so it stands for a receiver not yet on v1a.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import SecretStr
from standardwebhooks import Webhook, WebhookVerificationError
from temporalio.client import Client

from domain.ids import registry_workflow_id
from domain.signing import new_secret, public_key_of
from settings import Settings
from tests.integration.helpers import (
    api_with,
    codec_with,
    create_endpoint,
    decoded_history,
    delivery_outcome,
    key_forms,
    post_event,
    raw_history,
    signing_private_keys,
    tracking_event,
)
from tests.receiver import Receiver

OPERATOR = {"Authorization": "Bearer token-operator"}


def _verdicts(public_key: str, received: dict[str, str]) -> list[bool]:
    """One verdict per v1a signature in the header, in order (other schemes are not this key's)."""
    raw_key = base64.b64decode(public_key.removeprefix("whpk_"))
    openssl, libsodium = Ed25519PublicKey.from_public_bytes(raw_key), VerifyKey(raw_key)
    signed = f"{received['webhook-id']}.{received['webhook-timestamp']}.{received['_body']}".encode()
    verdicts = []
    for scheme, signature in (s.split(",", 1) for s in received["webhook-signature"].split(" ")):
        if scheme != "v1a":
            continue
        raw_signature = base64.b64decode(signature)
        try:
            openssl.verify(raw_signature, signed)
            by_openssl = True
        except InvalidSignature:
            by_openssl = False
        try:
            libsodium.verify(signed, raw_signature)
            by_libsodium = True
        except BadSignatureError:
            by_libsodium = False
        assert by_openssl == by_libsodium, "the two Ed25519 implementations disagree"
        verdicts.append(by_openssl)
    return verdicts


def _schemes(received: dict[str, str]) -> list[str]:
    return [s.split(",", 1)[0] for s in received["webhook-signature"].split(" ")]


def _v1_receiver_accepts(secret: str, received: dict[str, str]) -> bool:
    headers = {k: v for k, v in received.items() if k.startswith("webhook-")}
    try:
        Webhook(secret).verify(received["_body"], headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


async def _deliver_once(api: httpx.AsyncClient, client: Client, receiver: Receiver, url: str) -> dict[str, str]:
    accepted = await post_event(api, tracking_event())
    [delivery] = accepted["deliveries"]
    await delivery_outcome(client, delivery["id"])
    [request] = [r for r in receiver.requests(url) if r.headers["webhook-id"] == delivery["id"]]
    return dict(request.headers) | {"_body": request.body.decode(), "_delivery": delivery["id"]}


async def _rotate(api: httpx.AsyncClient, endpoint_id: str, **body: Any) -> dict[str, Any]:
    response = await api.post(f"/v1/endpoints/{endpoint_id}/secret", json=body or None)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_v1a_signatures_verify_with_the_public_key_and_rotate_with_a_grace_period(
    api, client, receiver, settings
):
    url = receiver.url()
    endpoint = await create_endpoint(api, url, events=["TRACKING_UPDATE"])
    first = await _rotate(api, endpoint["id"], scheme="v1a")
    signed = await _deliver_once(api, client, receiver, url)
    second = await _rotate(api, endpoint["id"], scheme="v1a")
    during_grace = await _deliver_once(api, client, receiver, url)
    shown = await api.get(f"/v1/endpoints/{endpoint['id']}")
    async with api_with(settings.model_copy(update={"signing_secret_grace_hours": 0})) as no_grace:
        third = (await no_grace.post(f"/v1/endpoints/{endpoint['id']}/secret", json={"scheme": "v1a"})).json()
    after_grace = await _deliver_once(api, client, receiver, url)

    # The answer: the public key, once, and the endpoint; no secret of any kind.
    assert set(first) == {"public_key", "endpoint"} and first["public_key"].startswith("whpk_")
    assert len(base64.b64decode(first["public_key"].removeprefix("whpk_"))) == 32
    assert first["endpoint"]["signing"]["scheme"] == "v1a"
    assert first["endpoint"]["signing"]["public_key"] == first["public_key"]
    assert _schemes(signed) == ["v1a"] and _verdicts(first["public_key"], signed) == [True]
    # During the grace period both keys sign: the newest first, each verifying with its own public key only.
    assert _verdicts(second["public_key"], during_grace) == [True, False]
    assert _verdicts(first["public_key"], during_grace) == [False, True]
    assert _verdicts(third["public_key"], after_grace) == [True]
    # GET shows the scheme and the current public key, never a private one.
    assert shown.json()["signing"]["scheme"] == "v1a" and shown.json()["signing"]["public_key"] == second["public_key"]
    assert shown.json()["signing"]["previous_secret_expires_at"] is not None
    assert "whsk_" not in shown.text and "ciphertext" not in shown.text


async def test_switching_between_v1_and_v1a_keeps_the_old_one_signing_through_the_grace_period(api, client, receiver):
    url = receiver.url()
    endpoint = await create_endpoint(api, url, events=["TRACKING_UPDATE"])
    hmac_first = await _rotate(api, endpoint["id"])  # no body: v1, as before v1a
    to_v1a = await _rotate(api, endpoint["id"], scheme="v1a")
    switching = await _deliver_once(api, client, receiver, url)
    back_to_v1 = await _rotate(api, endpoint["id"], scheme="v1")
    switching_back = await _deliver_once(api, client, receiver, url)

    assert set(hmac_first) == {"secret", "endpoint"} and hmac_first["secret"].startswith("whsec_")
    signing = hmac_first["endpoint"]["signing"]
    assert signing["scheme"] == "v1" and signing["public_key"] is None
    # v1 -> v1a: the key pair signs first, the HMAC secret beside it.
    assert _schemes(switching) == ["v1a", "v1"]
    assert _verdicts(to_v1a["public_key"], switching) == [True]
    # A receiver still on v1, with the spec's own library, is not disturbed by the v1a signature beside its own.
    assert _v1_receiver_accepts(hmac_first["secret"], switching)
    # v1a -> v1: a new HMAC secret, the key pair still signing through the grace period.
    assert back_to_v1["secret"].startswith("whsec_") and back_to_v1["endpoint"]["signing"]["scheme"] == "v1"
    assert _schemes(switching_back) == ["v1", "v1a", "v1"]
    assert _v1_receiver_accepts(back_to_v1["secret"], switching_back)
    assert _verdicts(to_v1a["public_key"], switching_back) == [True]
    assert not _v1_receiver_accepts(new_secret(), switching_back)  # the check does reject another secret


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scheme": "v2"}, "scheme"),
        ({"scheme": "ed25519"}, "scheme"),
        ({"scheme": None}, "scheme"),
        # An unknown key is reported on the object that has it, never by its name (it could be a secret).
        ({"scheme": "v1a", "private_key": "whsk_AAAA"}, "body"),
    ],
)
async def test_an_unknown_scheme_is_a_422_naming_the_field_and_changes_nothing(api, receiver, body, field):
    endpoint = await create_endpoint(api, receiver.url(), events=["TRACKING_UPDATE"])

    refused = await api.post(f"/v1/endpoints/{endpoint['id']}/secret", json=body)

    assert refused.status_code == 422, refused.text
    assert [p["field"] for p in refused.json()["errors"]] == [field]
    assert "v2" not in refused.json()["detail"] and "whsk_AAAA" not in refused.text  # the value is not echoed
    assert (await api.get(f"/v1/endpoints/{endpoint['id']}")).json()["signing"] is None


async def test_the_private_key_is_nowhere_in_clear_histories_answers_or_logs(
    api, client, receiver, settings: Settings, temporal_address, caplog
):
    caplog.set_level(logging.DEBUG)
    url = receiver.url()
    endpoint = await create_endpoint(api, url, events=["TRACKING_UPDATE"])
    rotated = await api.post(f"/v1/endpoints/{endpoint['id']}/secret", json={"scheme": "v1a"})
    created = rotated.json()
    received = await _deliver_once(api, client, receiver, url)
    answers = [
        rotated.text,
        (await api.get(f"/v1/endpoints/{endpoint['id']}")).text,
        (await api.get("/v1/endpoints")).text,
        (await api.get(f"/v1/deliveries/{received['_delivery']}")).text,
    ]
    [private_key] = await signing_private_keys(client, settings, "default", endpoint["id"])
    forms = key_forms(private_key)

    operator = settings.model_copy(update={"operator_token": SecretStr("token-operator")})
    found: dict[str, list[str]] = {}
    async with codec_with(operator) as codec:
        for workflow_id in (registry_workflow_id("default"), received["_delivery"]):
            raw = await raw_history(temporal_address, workflow_id)
            decoded = (await decoded_history(temporal_address, workflow_id, codec, OPERATOR)).encode()
            found[f"raw {workflow_id}"] = [name for name, form in forms.items() if form in raw]
            found[f"decoded {workflow_id}"] = [name for name, form in forms.items() if form in decoded]
            if workflow_id == registry_workflow_id("default"):
                # The decoding worked: the rotation's public key reads, its private key is sealed.
                assert created["public_key"].encode() in decoded and b'"ciphertext"' in decoded
    for number, text in enumerate(answers):
        found[f"API answer {number}"] = [name for name, form in forms.items() if form in text.encode()]
    found["logs"] = [name for name, form in forms.items() if form in caplog.text.encode()]

    # The key looked for is the one that signed: its public key is the one the API answered.
    assert public_key_of(private_key) == created["public_key"] and _verdicts(created["public_key"], received) == [True]
    assert received["_delivery"] in caplog.text  # the worker's and the API's logs were captured
    assert {where: names for where, names in found.items() if names} == {}
