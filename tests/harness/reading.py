"""Reading records back through the API the way a checker needs them: digests, not bodies."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class Seen:
    """One GET of a record: its status, the digest and length of the bytes as sent, and their encoding."""

    status: int
    sha: str | None
    size: int
    encoding: str | None


class UnexpectedStatus(AssertionError):
    pass


def fetch(http: httpx.Client, store_id: str, key: str, *, accept_encoding: str = "identity") -> Seen:
    """GET a record and digest the bytes exactly as they came over the wire (no client-side decoding)."""
    digest = hashlib.sha256()
    size = 0
    url = f"/key-value-stores/{store_id}/records/{key}"
    with http.stream("GET", url, headers={"accept-encoding": accept_encoding}) as response:
        if response.status_code == 404:
            response.read()
            return Seen(404, None, 0, None)
        if response.status_code != 200:
            response.read()
            raise UnexpectedStatus(f"GET {key}: {response.status_code} {response.text[:300]}")
        for chunk in response.iter_raw():
            digest.update(chunk)
            size += len(chunk)
        length = response.headers.get("content-length")
        if length is not None and int(length) != size:
            raise UnexpectedStatus(f"GET {key}: Content-Length {length} but {size} bytes came")
        return Seen(200, digest.hexdigest(), size, response.headers.get("content-encoding"))


async def afetch(
    http: httpx.AsyncClient, store_id: str, key: str, *, accept_encoding: str = "identity"
) -> Seen:
    digest = hashlib.sha256()
    size = 0
    url = f"/key-value-stores/{store_id}/records/{key}"
    async with http.stream("GET", url, headers={"accept-encoding": accept_encoding}) as response:
        if response.status_code == 404:
            await response.aread()
            return Seen(404, None, 0, None)
        if response.status_code != 200:
            await response.aread()
            raise UnexpectedStatus(f"GET {key}: {response.status_code} {response.text[:300]}")
        async for chunk in response.aiter_raw():
            digest.update(chunk)
            size += len(chunk)
        length = response.headers.get("content-length")
        if length is not None and int(length) != size:
            raise UnexpectedStatus(f"GET {key}: Content-Length {length} but {size} bytes came")
        return Seen(200, digest.hexdigest(), size, response.headers.get("content-encoding"))


def all_keys(http: httpx.Client, store_id: str, *, page: int = 1000) -> dict[str, int]:
    """Every key of a store with its listed size, following the listing's pages."""
    found: dict[str, int] = {}
    start: str | None = None
    while True:
        params: dict[str, Any] = {"limit": page}
        if start is not None:
            params["exclusiveStartKey"] = start
        response = http.get(f"/key-value-stores/{store_id}/keys", params=params)
        if response.status_code != 200:
            raise UnexpectedStatus(f"keys: {response.status_code} {response.text[:300]}")
        data = response.json()["data"]
        for item in data["items"]:
            assert item["key"] not in found, f"key {item['key']} listed twice"
            found[item["key"]] = item["size"]
        if not data["isTruncated"]:
            return found
        start = data["nextExclusiveStartKey"]


def stats(http: httpx.Client, store_id: str) -> dict[str, int]:
    response = http.get(f"/key-value-stores/{store_id}")
    if response.status_code != 200:
        raise UnexpectedStatus(f"store: {response.status_code} {response.text[:300]}")
    found: dict[str, int] = response.json()["data"]["stats"]
    return found
