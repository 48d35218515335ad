"""What the key-value HTTP contract tests share (tests/test_http_contract_*.py): the values the reference
fixes, and small calls that check the envelope as they go."""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import brotli
import httpx

from tests.harness.envelope import data_of, unique

USERNAME = "admin"
KEY_CHARS = "!-_.'()"
STATS_FIELDS = ("readCount", "writeCount", "deleteCount", "listCount", "storageBytes", "s3StorageBytes")
GENERAL_ACCESS = ("RESTRICTED", "ANYONE_WITH_ID_CAN_READ", "ANYONE_WITH_NAME_CAN_READ", "FOLLOW_USER_SETTING")
COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
}


def create_named(http: httpx.Client, name: str | None = None) -> dict[str, Any]:
    response = http.post("/key-value-stores", params={"name": name or unique("ct")})
    return data_of(response, 201)  # type: ignore[no-any-return]


def get_store(http: httpx.Client, store_id: str) -> dict[str, Any]:
    return data_of(http.get(f"/key-value-stores/{store_id}"))  # type: ignore[no-any-return]


def record_path(store: dict[str, Any], key: str) -> str:
    return f"/key-value-stores/{store['id']}/records/{key}"


def put(
    http: httpx.Client,
    store: dict[str, Any],
    key: str,
    body: bytes,
    content_type: str | None = "application/octet-stream",
    encoding: str | None = None,
) -> httpx.Response:
    headers = {}
    if content_type is not None:
        headers["content-type"] = content_type
    if encoding is not None:
        headers["content-encoding"] = encoding
    response = http.put(record_path(store, key), content=body, headers=headers)
    assert response.status_code in (200, 201), (response.status_code, response.text)
    return response


def raw_get(http: httpx.Client, path: str, accept_encoding: str) -> tuple[httpx.Response, bytes]:
    """GET with no automatic decoding: the bytes exactly as they came over the wire."""
    with http.stream("GET", path, headers={"accept-encoding": accept_encoding}) as response:
        body = b"".join(response.iter_raw())
    return response, body


def keys_page(http: httpx.Client, store: dict[str, Any], **params: Any) -> dict[str, Any]:
    return data_of(http.get(f"/key-value-stores/{store['id']}/keys", params=params))  # type: ignore[no-any-return]


def wait_for_stats(http: httpx.Client, store_id: str, **expected: int) -> dict[str, Any]:
    """Read and list counters may be buffered: poll for up to 3 s until they show the expected values."""
    deadline = time.monotonic() + 3
    while True:
        stats: dict[str, Any] = get_store(http, store_id)["stats"]
        if all(stats[name] == value for name, value in expected.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for name, value in expected.items():
        assert stats[name] == value, (name, stats)
    return stats


def is_absolute_url(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)
