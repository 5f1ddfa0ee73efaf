"""Both Standard Webhooks signature schemes, checked against published vectors and independent verifiers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from domain.endpoints import Endpoint
from domain.secrets import Sealed
from domain.signing import (
    Scheme,
    SigningSecret,
    ed25519_signature,
    hmac_signature,
    is_public_key,
    new_key_pair,
    new_secret,
    new_signing_secret,
    public_key_of,
    signature_header,
    verify_signature,
)
from infra.codec import new_key, parse_key
from infra.secrets import SecretBox
from workflows.endpoint_registry import _require_public_key
from workflows.registry_messages import SecretRotation

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BOX = SecretBox(parse_key(new_key()))
REVEAL = BOX.reveal_for("shop-a")

# RFC 8032 section 7.1, TEST 1: an Ed25519 private key (its 32-byte seed) and its public key.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


def _verify_ed25519(public_key: str, signature: str, content: bytes) -> bool:
    """A receiver's check, from the spec: the whpk_ key's 32 bytes, the v1a signature's 64."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    try:
        key.verify(base64.b64decode(signature.removeprefix("v1a,")), content)
    except InvalidSignature:
        return False
    return True


def test_hmac_signature_matches_the_standard_webhooks_test_vector():
    signature = hmac_signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'
    )

    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_public_key_of_a_private_key_is_rfc_8032s_in_whpk_form():
    private_key = "whsk_" + base64.b64encode(RFC8032_SEED).decode()

    assert public_key_of(private_key) == "whpk_" + base64.b64encode(RFC8032_PUBLIC).decode()


def test_an_ed25519_signature_verifies_with_the_public_key_over_id_timestamp_and_body():
    private_key = "whsk_" + base64.b64encode(RFC8032_SEED).decode()
    public_key = "whpk_" + base64.b64encode(RFC8032_PUBLIC).decode()

    signature = ed25519_signature(private_key, "msg_42", 1614265330, '{"Event":"TRACKING_UPDATE"}')

    assert signature.startswith("v1a,") and len(base64.b64decode(signature.removeprefix("v1a,"))) == 64
    assert _verify_ed25519(public_key, signature, b'msg_42.1614265330.{"Event":"TRACKING_UPDATE"}')
    # Each part is signed: another id, timestamp or body does not verify.
    assert not _verify_ed25519(public_key, signature, b'msg_43.1614265330.{"Event":"TRACKING_UPDATE"}')
    assert not _verify_ed25519(public_key, signature, b'msg_42.1614265331.{"Event":"TRACKING_UPDATE"}')
    assert not _verify_ed25519(public_key, signature, b'msg_42.1614265330.{"Event":"ORDER_ERROR"}')


def test_a_new_key_pair_is_random_its_public_key_matches_and_its_repr_hides_the_private_key():
    first, second = new_key_pair(), new_key_pair()
    assert first.public_key is not None and second.public_key is not None

    assert first.scheme is Scheme.ED25519 and first.secret.startswith("whsk_")
    assert first.secret != second.secret and first.public_key != second.public_key
    assert len(base64.b64decode(first.secret.removeprefix("whsk_"))) == 32
    assert first.public_key == public_key_of(first.secret) and is_public_key(first.public_key)
    assert first.secret not in repr(first) and first.secret not in str(first)
    signature = ed25519_signature(first.secret, "msg_1", 1, "{}")
    assert _verify_ed25519(first.public_key, signature, b"msg_1.1.{}")
    assert not _verify_ed25519(second.public_key, signature, b"msg_1.1.{}")


def test_new_signing_secret_makes_what_the_scheme_says():
    hmac_secret, key_pair = new_signing_secret(Scheme.HMAC), new_signing_secret(Scheme.ED25519)

    assert hmac_secret.secret.startswith("whsec_") and hmac_secret.public_key is None
    assert len(base64.b64decode(hmac_secret.secret.removeprefix("whsec_"))) == 32
    assert key_pair.secret.startswith("whsk_") and key_pair.public_key is not None


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("whpk_" + base64.b64encode(RFC8032_PUBLIC).decode(), True),
        (base64.b64encode(RFC8032_PUBLIC).decode(), False),  # no prefix
        ("whsk_" + base64.b64encode(RFC8032_PUBLIC).decode(), False),  # a private key's prefix
        ("whpk_" + base64.b64encode(RFC8032_PUBLIC[:31]).decode(), False),  # 31 bytes
        ("whpk_not base64!", False),
    ],
)
def test_is_public_key(text: str, valid: bool):
    assert is_public_key(text) is valid


def _sealed(new_text: str, scheme: Scheme) -> Sealed:
    return BOX.seal(new_text, "shop-a", "signing_key" if scheme is Scheme.ED25519 else "signing_secret")


def test_during_a_switch_from_hmac_to_ed25519_both_sign_the_newest_first_until_the_old_one_expires():
    old_secret, key_pair = new_secret(), new_key_pair()
    secrets = [
        SigningSecret(
            secret=_sealed(old_secret, Scheme.HMAC), created_at=NOW - timedelta(days=1), expires_at=NOW + timedelta(1)
        ),
        SigningSecret(
            secret=_sealed(key_pair.secret, Scheme.ED25519),
            created_at=NOW,
            scheme=Scheme.ED25519,
            public_key=key_pair.public_key,
        ),
    ]

    during = signature_header(secrets, REVEAL, "msg_1", 1614265330, "{}", NOW).split(" ")
    after = signature_header(secrets, REVEAL, "msg_1", 1614265330, "{}", NOW + timedelta(days=2)).split(" ")

    assert key_pair.public_key is not None
    assert [s.split(",")[0] for s in during] == ["v1a", "v1"]
    assert _verify_ed25519(key_pair.public_key, during[0], b"msg_1.1614265330.{}")
    assert during[1] == hmac_signature(old_secret, "msg_1", 1614265330, "{}")
    assert after == during[:1]


def test_a_sealed_private_key_does_not_open_as_an_hmac_secret():
    """Sealed as a signing key, it is bound to that field: a record relabelled v1 fails instead of signing."""
    key_pair = new_key_pair()
    relabelled = SigningSecret(secret=_sealed(key_pair.secret, Scheme.ED25519), created_at=NOW, scheme=Scheme.HMAC)

    with pytest.raises(ValueError, match="signing_secret failed authentication"):
        signature_header([relabelled], REVEAL, "msg_1", 1, "{}", NOW)


def test_a_signing_secret_stored_before_v1a_loads_as_hmac():
    stored = {"secret": {"key_id": "k", "ciphertext": "AAAA"}, "created_at": NOW.isoformat(), "expires_at": None}

    loaded = SigningSecret.model_validate(stored)

    assert loaded.scheme is Scheme.HMAC and loaded.public_key is None
    with pytest.raises(ValidationError):
        SigningSecret.model_validate(stored | {"scheme": "v2"})


def test_the_endpoint_shows_the_current_scheme_and_public_key_never_the_private_key():
    key_pair = new_key_pair()
    endpoint = Endpoint(
        id="ep_1",
        url="https://shop.example.com/hook",
        events=["ORDER_SHIPPED"],
        created_at=NOW,
        updated_at=NOW,
        signing_secrets=[
            SigningSecret(secret=_sealed(new_secret(), Scheme.HMAC), created_at=NOW, expires_at=NOW + timedelta(1)),
            SigningSecret(
                secret=_sealed(key_pair.secret, Scheme.ED25519),
                created_at=NOW + timedelta(seconds=1),
                scheme=Scheme.ED25519,
                public_key=key_pair.public_key,
            ),
        ],
    )

    view = endpoint.masked()

    assert view.signing is not None
    assert (view.signing.scheme, view.signing.public_key) == (Scheme.ED25519, key_pair.public_key)
    shown = view.model_dump_json()
    assert '"scheme":"v1a"' in shown and "ciphertext" not in shown
    assert key_pair.secret.removeprefix("whsk_") not in shown


def _rotation(**fields: object) -> SecretRotation:
    return SecretRotation.model_validate(
        {"endpoint_id": "ep_1", "secret": {"key_id": "k", "ciphertext": "AAAA"}, "grace_seconds": 0} | fields
    )


def test_the_registry_takes_a_v1a_rotation_only_with_a_well_formed_public_key():
    public_key = new_key_pair().public_key

    _require_public_key(_rotation(scheme="v1a", public_key=public_key))
    _require_public_key(_rotation())  # HMAC, as rotations were written before v1a
    for wrong in (
        _rotation(scheme="v1a"),
        _rotation(scheme="v1a", public_key="whpk_AAAA"),
        _rotation(scheme="v1", public_key=public_key),
    ):
        with pytest.raises(ApplicationError) as refused:
            _require_public_key(wrong)
        assert [p["field"] for p in refused.value.details[0]] == ["public_key"]


def test_verify_signature_accepts_the_keys_own_signature_among_others_and_nothing_altered():
    secret, pair, other = new_secret(), new_key_pair(), new_key_pair()
    assert pair.public_key is not None and other.public_key is not None
    hmac_sig = hmac_signature(secret, "msg_1", 1700000000, '{"a":1}')
    ed_sig = ed25519_signature(pair.secret, "msg_1", 1700000000, '{"a":1}')
    header = f"{ed_sig} {hmac_sig}"

    assert verify_signature(secret, "msg_1", 1700000000, '{"a":1}', header)
    assert verify_signature(pair.public_key, "msg_1", 1700000000, '{"a":1}', header)
    assert not verify_signature(other.public_key, "msg_1", 1700000000, '{"a":1}', header)
    assert not verify_signature(new_secret(), "msg_1", 1700000000, '{"a":1}', header)
    assert not verify_signature(secret, "msg_1", 1700000000, '{"a":2}', header)
    assert not verify_signature(secret, "msg_2", 1700000000, '{"a":1}', header)
    assert not verify_signature(pair.public_key, "msg_1", 1700000001, '{"a":1}', header)
    assert not verify_signature(pair.public_key, "msg_1", 1700000000, '{"a":1}', "v1a,not-base64!")
    # The public key does not verify an HMAC signature, nor the secret an Ed25519 one.
    assert not verify_signature(pair.public_key, "msg_1", 1700000000, '{"a":1}', hmac_sig)
    assert not verify_signature(secret, "msg_1", 1700000000, '{"a":1}', ed_sig)
