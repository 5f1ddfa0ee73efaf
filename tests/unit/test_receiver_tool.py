"""The quick start's receiver (tools/receiver.py): the key it reads, what it says of a signature, what it hides."""

from __future__ import annotations

import base64
import json

from domain.signing import ed25519_signature, hmac_signature, new_key_pair, new_secret
from tools.receiver import Answers, masked, signature_check, signing_key

NOW = 1_700_000_000
BODY = '{"Event":"TRACKING_UPDATE"}'


def _headers(signature: str, timestamp: int = NOW) -> dict[str, str]:
    return {"webhook-id": "delivery/x/0", "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_the_key_file_may_hold_the_apis_answer_in_either_scheme_or_the_key_alone(tmp_path):
    secret, pair = new_secret(), new_key_pair()
    file = tmp_path / "receiver-secret.json"
    assert signing_key(file) is None  # not made yet
    file.write_text(json.dumps({"secret": secret, "endpoint": {"id": "ep_1"}}))
    assert signing_key(file) == secret
    file.write_text(json.dumps({"public_key": pair.public_key, "endpoint": {"id": "ep_1"}}))
    assert signing_key(file) == pair.public_key
    file.write_text(secret + "\n")
    assert signing_key(file) == secret


def test_a_signature_is_verified_failed_unchecked_or_absent():
    secret, pair = new_secret(), new_key_pair()
    assert pair.public_key is not None
    v1 = hmac_signature(secret, "delivery/x/0", NOW, BODY)
    v1a = ed25519_signature(pair.secret, "delivery/x/0", NOW, BODY)

    assert signature_check(secret, _headers(v1), BODY, NOW + 10) == "verified"
    assert signature_check(pair.public_key, _headers(v1a), BODY, NOW) == "verified"
    assert signature_check(secret, _headers(v1), BODY + " ", NOW).startswith("FAILED (no signature matches")
    assert signature_check(new_secret(), _headers(v1), BODY, NOW).startswith("FAILED (no signature matches")
    assert signature_check(secret, _headers(v1), BODY, NOW + 301).startswith("FAILED (timestamp")
    assert signature_check(None, _headers(v1), BODY, NOW).startswith("unchecked")
    assert signature_check(secret, {"webhook-id": "delivery/x/0"}, BODY, NOW) == "unsigned"


def test_passwords_and_custom_header_values_are_masked_the_rest_shown():
    basic = "Basic " + base64.b64encode(b"shop:s3cret").decode()
    shown = masked({"authorization": basic, "x-shop-token": "abc123", "webhook-id": "delivery/x/0"})
    assert shown == {"authorization": "Basic shop:********", "x-shop-token": "********", "webhook-id": "delivery/x/0"}
    assert masked({"authorization": "Bearer tok"}) == {"authorization": "Bearer ********"}


def test_a_status_for_the_first_posts_of_each_delivery_then_200():
    answers = Answers(503, times=2)
    assert [answers.next_for("a") for _ in range(3)] == [503, 503, 200]
    assert answers.next_for("b") == 503
    assert {Answers(500, None).next_for("a") for _ in range(3)} == {500}
