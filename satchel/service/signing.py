"""Signatures for public URLs, bit-compatible with the official clients.

A record URL carries the HMAC of its key; a keys or records listing URL carries a versioned storage signature,
`base64url("0.{expiresAtMs}.{hmac of '0.{expiresAtMs}.{storeId}'}")`, where 0 means it never expires.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import string

BASE62 = string.digits + string.ascii_letters


# Every two-digit base-62 string, so a number converts two digits per division (listings sign every key).
PAIRS = [high + low for high in BASE62 for low in BASE62]


def _base62(num: int) -> str:
    if num == 0:
        return "0"
    pairs = []
    while num:
        num, rem = divmod(num, 62 * 62)
        pairs.append(PAIRS[rem])
    return "".join(reversed(pairs)).lstrip("0")


def hmac_signature(secret: str, message: str) -> str:
    """The clients' signature: the first 30 hex digits (15 bytes) of the HMAC-SHA256, in base 62."""
    digest = hmac.digest(secret.encode(), message.encode(), "sha256")
    return _base62(int.from_bytes(digest[:15], "big"))


def record_signature(secret: str, key: str) -> str:
    return hmac_signature(secret, key)


def storage_signature(secret: str, store_id: str, expires_at_ms: int = 0) -> str:
    payload = f"0.{expires_at_ms}.{hmac_signature(secret, f'0.{expires_at_ms}.{store_id}')}"
    return base64.urlsafe_b64encode(payload.encode()).decode()


def check_record_signature(secret: str, key: str, signature: str) -> bool:
    # Bytes, not str: compare_digest refuses a str with non-ASCII characters, which a forged one may hold.
    return hmac.compare_digest(record_signature(secret, key).encode(), signature.encode())


def read_storage_signature(secret: str, store_id: str, signature: str) -> int | None:
    """The expiry (ms, 0 = never) a storage signature was made with, or None when it is not genuine."""
    padded = signature + "=" * (-len(signature) % 4)  # JavaScript strips the padding
    try:
        version, expires, mac = base64.urlsafe_b64decode(padded.encode()).decode().split(".")
        expires_at = int(expires)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if version != "0" or expires_at < 0:
        return None
    expected = hmac_signature(secret, f"0.{expires_at}.{store_id}")
    return expires_at if hmac.compare_digest(expected.encode(), mac.encode()) else None
