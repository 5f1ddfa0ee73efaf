"""Comparing a bearer token a caller sent with one the service holds."""

from __future__ import annotations

import hashlib
import hmac


def same_token(given: str, expected: str) -> bool:
    """In time that depends on neither token: both are hashed first, so compare_digest sees
    equal lengths whatever the tokens' own."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())
