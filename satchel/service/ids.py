"""Identifiers and secrets: resource ids like the hosted API's, API tokens, and their digests."""

from __future__ import annotations

import functools
import hashlib
import secrets
import string

ALPHABET = string.ascii_letters + string.digits
TOKEN_PREFIX = "apify_api_"  # noqa: S105 - a prefix, not a secret


def new_id() -> str:
    """A 17-character id (about 101 bits), hard enough to guess to serve as a read capability."""
    return "".join(secrets.choice(ALPHABET) for _ in range(17))


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def new_token() -> str:
    return TOKEN_PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(36))


@functools.lru_cache(maxsize=1024)
def token_hash(token: str) -> str:
    # Tokens are random and long, so a fast digest is a safe index; a slow KDF would only cost every request.
    # The few tokens in use are hashed once each, not once per request.
    return hashlib.sha256(token.encode()).hexdigest()
