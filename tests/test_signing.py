"""Signatures agree bit for bit with the official Python client's own, for many keys and secrets."""

from __future__ import annotations

import base64
import random
import string
from datetime import timedelta

import pytest
from apify_client._utils.crypto import create_hmac_signature, create_storage_content_signature

from satchel.clock import now_ms
from satchel.errors import Forbidden
from satchel.service.signing import (
    check_record_signature,
    expiring_record_signature,
    read_storage_signature,
    record_signature,
    storage_signature,
)

KEY_CHARS = string.ascii_letters + string.digits + "!-_.'()"


def test_record_signatures_match_the_client() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        secret = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(1, 40)))
        key = "".join(rng.choices(KEY_CHARS, k=rng.randint(1, 256)))
        assert record_signature(secret, key) == create_hmac_signature(secret, key)


def test_storage_signatures_match_the_client_both_ways() -> None:
    rng = random.Random(8)
    for _ in range(500):
        secret = "".join(rng.choices(string.ascii_letters, k=24))
        store_id = "".join(rng.choices(string.ascii_letters + string.digits, k=17))
        theirs = create_storage_content_signature(store_id, secret)
        assert storage_signature(secret, store_id) == theirs
        assert read_storage_signature(secret, store_id, theirs) == 0
        assert read_storage_signature(secret + "x", store_id, theirs) is None


def test_a_storage_signature_has_one_spelling() -> None:
    """The expiry inside is read as signed: the same number written another way is not the signature."""
    secret, store_id = "s" * 24, "a" * 17
    genuine = create_storage_content_signature(store_id, secret, expires_in=timedelta(minutes=1))
    version, expires, mac = base64.urlsafe_b64decode(genuine + "=" * (-len(genuine) % 4)).decode().split(".")
    assert read_storage_signature(secret, store_id, genuine) == int(expires)
    for other in (f" {expires}", f"+{expires}", f"0{expires}", f"{expires[:3]}_{expires[3:]}"):
        forged = base64.urlsafe_b64encode(f"{version}.{other}.{mac}".encode()).decode().rstrip("=")
        assert read_storage_signature(secret, store_id, forged) is None, other


# --- Satchel's own expiring record links (the Console's and `satchel public-url`'s)


def test_expiring_record_signatures_grant_their_record_until_they_expire() -> None:
    rng = random.Random(9)
    future = now_ms() + 3_600_000
    for _ in range(300):
        secret = "".join(rng.choices(string.ascii_letters, k=24))
        key = "".join(rng.choices(KEY_CHARS, k=rng.randint(1, 256)))
        signature = expiring_record_signature(secret, key, future)
        assert check_record_signature(secret, key, signature)
        assert check_record_signature(secret, key, signature.rstrip("="))  # unpadded, as JavaScript sends
        assert not check_record_signature(secret + "x", key, signature)
        # The clients' own record signatures keep working beside them.
        assert check_record_signature(secret, key, create_hmac_signature(secret, key))
    past = expiring_record_signature("secret", "k1", now_ms() - 1000)
    with pytest.raises(Forbidden, match="expired") as refused:
        check_record_signature("secret", "k1", past)
    assert refused.value.type == "invalid-signature"


def test_no_signature_passes_for_another_kind_or_another_record() -> None:
    """Record links, listing links and bare-key record links sign messages no other kind can produce."""
    secret, store_id, future = "s3cret", "AbCdEfGhIjKlMnOpQ", now_ms() + 3_600_000
    record = expiring_record_signature(secret, "k1", future)
    listing = storage_signature(secret, store_id, future)
    assert not check_record_signature(secret, "k2", record)
    assert not check_record_signature(secret, "k1", listing)
    assert read_storage_signature(secret, store_id, record) is None
    # A key that spells the expiring form's message gets a bare-key signature that grants nothing else.
    lookalike = f"0.{future}.records.k1"
    bare = create_hmac_signature(secret, lookalike)
    forged = base64.urlsafe_b64encode(f"0.{future}.{bare}".encode()).decode()
    assert not check_record_signature(secret, "k1", forged)
    assert read_storage_signature(secret, store_id, forged) is None
