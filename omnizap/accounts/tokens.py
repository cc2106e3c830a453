"""Session, sign-in-link and login-state tokens: 256 random bits, stored only as SHA-256 digests.

A plain (unkeyed) digest is enough: the tokens are random, so the digest cannot be reversed by
guessing, and a database reader cannot turn a stored digest back into a working cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 43 characters, 256 random bits


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def clean_token(value: str | None) -> str | None:
    """The value if it could be a token this server issued, else None (never looked up)."""
    if value is None or not TOKEN_PATTERN.match(value):
        return None
    return value


def same_secret(left: str, right: str) -> bool:
    """Constant-time equality of two secrets (digests, nonces, signatures)."""
    return hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))
