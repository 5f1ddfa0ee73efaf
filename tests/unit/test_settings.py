"""Settings that guard access: the operator's token is never a merchant's, and a refusal never prints it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from settings import Settings


@pytest.mark.parametrize("merchant", [{"api_token": "tok-shared-1"}, {"api_tokens": {"shop-a": "tok-shared-1"}}])
def test_the_operator_token_must_differ_from_every_merchant_token(merchant):
    with pytest.raises(ValidationError, match="WEBHOOKS_OPERATOR_TOKEN must differ") as refused:
        Settings(_env_file=None, operator_token="tok-shared-1", **merchant)

    assert "tok-shared-1" not in str(refused.value)


def test_an_empty_operator_token_is_no_token():
    # Compose passes an unset ${WEBHOOKS_OPERATOR_TOKEN:-} as "": Bearer "" must not open the codec.
    assert Settings(_env_file=None, operator_token="").operator_token is None
