"""Signatures for public URLs, bit-compatible with the official clients.

A record URL carries the HMAC of its key; a keys or records listing URL carries a versioned storage signature,
`base64url("0.{expiresAtMs}.{hmac of '0.{expiresAtMs}.{storeId}'}")`, where 0 means it never expires.

The reference's record signature cannot expire: its message is the bare key. Satchel's own hand-outs (the
Console, `satchel public-url`) sign records in the storage form instead, over the resource `records/{key}`:
`base64url("0.{expiresAtMs}.{hmac of '0.{expiresAtMs}.records/{key}'}")`. No message of one kind can be read
as another's: a key never holds `/`, and neither does a store id, so a record signature cannot pass for a
listing's or a bare-key one, and no signature for one key passes for another. The reference's bare-key form
can: a key spelled `0.{expiresAtMs}.{storeId}` signs as the store's listing, so no record takes such a key
(signs_like_a_listing). The official clients' record signatures keep working as they are; every signature of
a store dies when its secret is rotated.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import string

from satchel.clock import iso, now_ms
from satchel.errors import Forbidden

BASE62 = string.digits + string.ascii_letters
# How long the links the Console and the CLI hand out stay good, unless asked otherwise.
DEFAULT_LINK_SECONDS = 24 * 3600


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


def expiring_record_signature(secret: str, key: str, expires_at_ms: int) -> str:
    """A record URL's signature that stops working at expires_at_ms (Satchel's own; see the module's note)."""
    return storage_signature(secret, _record_resource(key), expires_at_ms)


def signs_like_a_listing(key: str, store_id: str) -> bool:
    """Whether a record key is the message of its store's listing signature (`0.{expiresAtMs}.{storeId}`):
    the clients sign a record by its bare key, so such a record's public URL would open every key and the
    ZIP of all records. No such key is taken."""
    version, _, rest = key.partition(".")
    expires, _, named = rest.partition(".")
    return version == "0" and expires.isdigit() and named == store_id


def expires_in(seconds: int) -> int:
    """The expiry, in epoch milliseconds, of a link made now to last `seconds`."""
    return now_ms() + seconds * 1000


def check_record_signature(secret: str, key: str, signature: str) -> bool:
    """Whether the signature grants reading the record: the clients' own, or Satchel's expiring one.

    A genuine expiring one past its time is refused saying so: only a holder of a once-valid link sees that.
    """
    # Bytes, not str: compare_digest refuses a str with non-ASCII characters, which a forged one may hold.
    if hmac.compare_digest(record_signature(secret, key).encode(), signature.encode()):
        return True
    expires_at = read_storage_signature(secret, _record_resource(key), signature)
    if expires_at is None:
        return False
    check_not_expired(expires_at)
    return True


def check_not_expired(expires_at: int) -> None:
    """Refuse a genuine signature whose time is up (0: it never expires)."""
    if 0 < expires_at <= now_ms():
        raise Forbidden(f"The signature expired at {iso(expires_at)}.", "invalid-signature")


def read_storage_signature(secret: str, store_id: str, signature: str) -> int | None:
    """The expiry (ms, 0 = never) a storage signature was made with, or None when it is not genuine."""
    padded = signature + "=" * (-len(signature) % 4)  # JavaScript strips the padding
    try:
        version, expires, mac = base64.urlsafe_b64decode(padded.encode()).decode().split(".")
        expires_at = int(expires)  # past 4,300 digits a ValueError too
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    # The expiry in the one spelling it was signed in: `int` also takes " 1", "+1", "01" or "0_1".
    if version != "0" or expires_at < 0 or expires != str(expires_at):
        return None
    expected = hmac_signature(secret, f"0.{expires_at}.{store_id}")
    return expires_at if hmac.compare_digest(expected.encode(), mac.encode()) else None


def _record_resource(key: str) -> str:
    return f"records/{key}"
