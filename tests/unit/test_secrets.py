"""Endpoint credentials sealed with the secrets key: opened only with it, only for their account and field."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from domain.endpoints import EndpointSpec
from domain.problems import field_errors
from domain.secrets import Sealed
from infra.codec import new_key, parse_key
from infra.secrets import SecretBox
from settings import Settings
from workflows.registry_messages import PlainSecretsSealed, RegistryState, sealed_where_plain

KEY = parse_key(new_key())


def test_a_sealed_secret_opens_only_for_its_account_and_field():
    box = SecretBox(KEY)

    sealed = box.seal("pw-Seal-1", "shop-a", "auth.password")

    assert "pw-Seal-1" not in sealed.model_dump_json()
    assert box.open(sealed, "shop-a", "auth.password") == "pw-Seal-1"
    with pytest.raises(ValueError, match="another account") as other_account:
        box.open(sealed, "shop-b", "auth.password")
    with pytest.raises(ValueError, match="another account"):
        box.open(sealed, "shop-a", "custom_header.value")
    assert "pw-Seal-1" not in str(other_account.value)


def test_after_rotation_old_secrets_still_open_and_an_unknown_key_is_named():
    old, new = parse_key(new_key()), parse_key(new_key())
    written_before = SecretBox(old).seal("hv-1", "shop-a", "custom_header.value")

    assert SecretBox(new, old_keys=[old]).open(written_before, "shop-a", "custom_header.value") == "hv-1"
    with pytest.raises(ValueError, match="unknown key"):
        SecretBox(new).open(written_before, "shop-a", "custom_header.value")


def test_tampered_ciphertext_is_refused():
    box = SecretBox(KEY)
    sealed = box.seal("whsec_abc", "shop-a", "signing_secret")
    flipped = sealed.ciphertext[:-4] + ("AAAA" if not sealed.ciphertext.endswith("AAAA") else "BBBB")

    with pytest.raises(ValueError, match="authentication"):
        box.open(Sealed(key_id=sealed.key_id, ciphertext=flipped), "shop-a", "signing_secret")


def test_a_registry_state_written_before_sealing_still_loads_with_its_plain_secrets():
    legacy = {
        "account": "default",
        "version": 7,
        "endpoints": {
            "ep_1": {
                "id": "ep_1",
                "url": "https://shop.example.com/hook",
                "events": ["ORDER_SHIPPED"],
                "auth": {"username": "shop", "password": "pw-legacy"},
                "custom_header": {"key": "X-Token", "value": "hv-legacy"},
                "signing_secrets": [{"secret": "whsec_bGVnYWN5", "created_at": "2026-11-01T00:00:00Z"}],
                "created_at": "2026-11-01T00:00:00Z",
                "updated_at": "2026-11-01T00:00:00Z",
            }
        },
    }
    box = SecretBox(KEY)

    endpoint = RegistryState.model_validate(legacy).endpoints["ep_1"]

    assert endpoint.auth is not None and box.open(endpoint.auth.password, "default", "auth.password") == "pw-legacy"
    assert endpoint.custom_header is not None and endpoint.custom_header.value == "hv-legacy"
    assert endpoint.signing_secrets[0].secret == "whsec_bGVnYWN5"


def test_sealed_secrets_survive_the_json_round_trip_temporal_makes():
    box = SecretBox(KEY)
    spec = EndpointSpec(
        url="https://shop.example.com/hook",
        events=["ORDER_SHIPPED"],
        auth={"username": "shop", "password": box.seal("pw-2", "default", "auth.password")},
    )

    again = EndpointSpec.model_validate_json(spec.model_dump_json())

    assert again == spec and again.auth is not None and isinstance(again.auth.password, Sealed)


def test_a_plain_secret_is_still_validated_as_text_and_documented_as_text():
    with pytest.raises(ValidationError) as refused:
        EndpointSpec.model_validate(
            {"url": "https://a.example", "events": ["ORDER_SHIPPED"], "auth": {"username": "u", "password": "p" * 257}}
        )

    assert field_errors(refused.value.errors()) == [
        {"field": "auth.password", "message": "must have at most 256 characters"}
    ]
    password = EndpointSpec.model_json_schema()["$defs"]["BasicAuth"]["properties"]["password"]
    assert password == {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^\\x00-\\x1f\\x7f]*$"} | {
        "title": "Password"
    }


def test_the_secrets_key_must_not_be_the_payload_key_the_codec_server_holds():
    key = SecretStr(new_key())

    with pytest.raises(ValidationError, match="WEBHOOKS_SECRETS_KEY must differ"):
        Settings(_env_file=None, encryption_key=key, secrets_key=key)
    with pytest.raises(ValidationError, match="WEBHOOKS_SECRETS_KEY must differ"):
        Settings(_env_file=None, encryption_key=SecretStr(new_key()), encryption_old_keys=[key], secrets_key=key)


def test_sealing_in_place_replaces_only_what_is_still_in_clear():
    """A secret sealed since the sealer read it (a PATCH through the API) is newer: it stays."""
    box = SecretBox(KEY)
    newer = box.seal("pw-newer", "default", "auth.password")
    endpoint = RegistryState.model_validate(
        {
            "account": "default",
            "endpoints": {
                "ep_1": {
                    "id": "ep_1",
                    "url": "https://shop.example.com/hook",
                    "events": ["ORDER_SHIPPED"],
                    "auth": {"username": "shop", "password": newer.model_dump()},
                    "custom_header": {"key": "X-Token", "value": "hv-legacy"},
                    "created_at": "2026-11-01T00:00:00Z",
                    "updated_at": "2026-11-01T00:00:00Z",
                }
            },
        }
    ).endpoints["ep_1"]
    sealing = PlainSecretsSealed(
        password=box.seal("pw-legacy", "default", "auth.password"),
        header_value=box.seal("hv-legacy", "default", "custom_header.value"),
    )

    sealed = sealed_where_plain(endpoint, sealing)

    assert sealed is not None and sealed.auth is not None and sealed.custom_header is not None
    assert sealed.auth.password == newer and sealed.custom_header.value == sealing.header_value
    assert sealed_where_plain(sealed, sealing) is None  # nothing left in clear: the registry refuses the update
