"""Home tokens: random, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "hpr_"  # noqa: S105 (a prefix that makes leaked tokens recognisable)


def new_token() -> str:
    """A fresh bearer token (256 bits of randomness)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps. Tokens are high-entropy, so a plain hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()
