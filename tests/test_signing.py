"""Signatures agree bit for bit with the official Python client's own, for many keys and secrets."""

from __future__ import annotations

import random
import string

from apify_client._utils.crypto import create_hmac_signature, create_storage_content_signature

from satchel.service.signing import read_storage_signature, record_signature, storage_signature

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
