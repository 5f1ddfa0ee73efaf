"""Settings that guard access: the operator's token is never a merchant's, and a refusal never prints it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from settings import Settings


@pytest.mark.parametrize("token", ["operator_token", "metrics_token"])
@pytest.mark.parametrize("merchant", [{"api_token": "tok-shared-1"}, {"api_tokens": {"shop-a": "tok-shared-1"}}])
def test_the_operator_and_metrics_tokens_must_differ_from_every_merchant_token(token, merchant):
    fields: dict[str, Any] = {token: "tok-shared-1", **merchant}
    with pytest.raises(ValidationError, match=f"WEBHOOKS_{token.upper()} must differ") as refused:
        Settings(_env_file=None, **fields)

    assert "tok-shared-1" not in str(refused.value)


@pytest.mark.parametrize("token", ["operator_token", "metrics_token"])
def test_an_empty_operator_or_metrics_token_is_no_token(token):
    # Compose passes an unset ${WEBHOOKS_…_TOKEN:-} as "": Bearer "" must not open what it guards.
    fields: dict[str, Any] = {token: ""}
    assert getattr(Settings(_env_file=None, **fields), token) is None


def test_an_account_with_an_empty_token_is_refused():
    # Bearer "" (or no header at all) would otherwise be that account's token.
    with pytest.raises(ValidationError, match="empty token for account shop-a"):
        Settings(_env_file=None, api_tokens={"shop-a": "", "shop-b": "tok-b-1"})


@pytest.mark.parametrize(
    "tokens",
    [
        {"api_tokens": {"shop-a": "tok-same-1", "shop-b": "tok-same-1"}},
        {"api_token": "tok-same-1", "api_tokens": {"shop-b": "tok-same-1"}},
    ],
)
def test_two_accounts_cannot_share_a_token(tokens):
    with pytest.raises(ValidationError, match="have the same token") as refused:
        Settings(_env_file=None, **tokens)

    assert "tok-same-1" not in str(refused.value)


def test_an_empty_default_token_is_no_token():
    assert Settings(_env_file=None, api_token="").api_token is None


@pytest.mark.parametrize("field", ["codec_port", "worker_health_port"])
def test_ports_are_in_range(field):
    out_of_range: dict[str, Any] = {field: 70000}
    with pytest.raises(ValidationError, match=field):
        Settings(_env_file=None, **out_of_range)
