"""Range reads of records, on every engine: 206 with Content-Range, 416, If-Range, and what is served whole.

A record stored without Content-Encoding advertises `Accept-Ranges: bytes` and serves `bytes=a-b`, `a-` and
`-n` as 206 with only those bytes read (a seek in a local file, a ranged GET against S3, a slice of an inline
body). A compressed record says `Accept-Ranges: none` and is sent whole. Several ranges, another unit or a
malformed header are answered 200 with the whole body (RFC 9110 allows ignoring Range); a range starting
past the end gets 416 with `Content-Range: bytes */SIZE` and the API's error envelope.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from satchel.settings import S3Settings
from satchel.storage.blobs.base import BlobStore
from satchel.storage.blobs.files import FileBlobs
from satchel.storage.blobs.s3 import S3Blobs
from tests.conftest import Server, every_engine
from tests.harness.backends import Backends

pytestmark = pytest.mark.timeout(300)
server = every_engine()

KIB = 1024
SIZES = {"inline": 1000, "blob": 300 * KIB}  # the default inline limit is 128 KiB


def url(store_id: str, key: str) -> str:
    return f"/key-value-stores/{store_id}/records/{key}"


@pytest.fixture(scope="module")
def stored(server: Server) -> dict[str, tuple[str, bytes]]:
    """One store with a record of each size: name -> (its path, its body)."""
    with server.client() as http:
        store_id = http.post("/key-value-stores").json()["data"]["id"]
        found = {}
        for name, size in SIZES.items():
            body = random.Random(name).randbytes(size)
            put = http.put(url(store_id, name), content=body, headers={"content-type": "application/x-thing"})
            assert put.status_code == 201
            found[name] = (url(store_id, name), body)
    return found


def cases(size: int) -> list[tuple[str, int, int]]:
    """Range header -> the slice a 206 carries (start, end exclusive)."""
    return [
        ("bytes=0-0", 0, 1),
        ("bytes=0-9", 0, 10),
        (f"bytes=10-{size // 2}", 10, size // 2 + 1),
        (f"bytes={size - 7}-", size - 7, size),
        ("bytes=-5", size - 5, size),
        (f"bytes=-{size * 3}", 0, size),  # a suffix longer than the body: all of it
        (f"bytes=5-{size * 3}", 5, size),  # an end past the body: up to its end
        (f"bytes={size - 1}-{size - 1}", size - 1, size),
        ("BYTES = 3 - 4", 3, 5),
        ("bytes=100-" + "9" * 5000, 100, size),  # a number longer than Python's int() takes
    ]


@pytest.mark.parametrize("name", SIZES)
def test_a_range_gives_206_with_that_slice(
    http: httpx.Client, stored: dict[str, tuple[str, bytes]], name: str
) -> None:
    path, body = stored[name]
    etag = http.get(path).headers["etag"]
    for header, start, end in cases(len(body)):
        response = http.get(path, headers={"range": header})
        assert response.status_code == 206, (header, response.text[:200])
        assert response.content == body[start:end], header
        assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(body)}"
        assert response.headers["content-length"] == str(end - start)
        assert response.headers["content-type"] == "application/x-thing"
        assert response.headers["etag"] == etag
        assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("name", SIZES)
def test_what_is_served_whole(http: httpx.Client, stored: dict[str, tuple[str, bytes]], name: str) -> None:
    path, body = stored[name]
    whole = [
        "bytes=0-1, 5-6",  # several ranges: the whole body, as RFC 9110 allows
        "items=0-1",  # a unit other than bytes
        "bytes=5-3",  # last before first: not a valid range
        "bytes=abc",
        "bytes=-",
        "bytes=1-2-3",
        "",
    ]
    for header in whole:
        response = http.get(path, headers={"range": header})
        assert response.status_code == 200, header
        assert response.content == body
        assert "content-range" not in response.headers
    head = http.head(path, headers={"range": "bytes=0-9"})  # Range is defined for GET only
    assert head.status_code == 200
    assert head.headers["accept-ranges"] == "bytes"
    assert head.headers["content-length"] == str(len(body))


@pytest.mark.parametrize("name", SIZES)
def test_an_unsatisfiable_range_gives_416(
    http: httpx.Client, stored: dict[str, tuple[str, bytes]], name: str
) -> None:
    path, body = stored[name]
    for header in (
        f"bytes={len(body)}-",
        f"bytes={len(body)}-{len(body) + 10}",
        "bytes=-0",
        "bytes=" + "9" * 30 + "-",
    ):
        response = http.get(path, headers={"range": header})
        assert response.status_code == 416, header
        assert response.headers["content-range"] == f"bytes */{len(body)}"
        assert response.json()["error"]["type"] == "range-not-satisfiable"


@pytest.mark.parametrize("name", SIZES)
def test_if_range(http: httpx.Client, stored: dict[str, tuple[str, bytes]], name: str) -> None:
    path, body = stored[name]
    current = http.get(path)
    etag, last_modified = current.headers["etag"], current.headers["last-modified"]
    for validator in (etag, last_modified):
        response = http.get(path, headers={"range": "bytes=0-3", "if-range": validator})
        assert response.status_code == 206, validator
        assert response.content == body[:4]
    stale = ('"0000"', f"W/{etag}", "Mon, 01 Jan 2001 00:00:00 GMT")
    for validator in stale:  # the client's copy is not the current one: the whole body
        response = http.get(path, headers={"range": "bytes=0-3", "if-range": validator})
        assert response.status_code == 200, validator
        assert response.content == body


def test_a_compressed_record_is_served_whole(http: httpx.Client) -> None:
    store_id = http.post("/key-value-stores").json()["data"]["id"]
    text = b"".join(b"line %d\n" % i for i in range(40_000))
    # Inline, and a blob (random bytes do not compress: past the 128 KiB inline limit once gzipped).
    for key, content in (("small", text[:2000]), ("large", text + secrets.token_bytes(200 * KIB))):
        packed = gzip.compress(content)
        put = http.put(url(store_id, key), content=packed, headers={"content-encoding": "gzip"})
        assert put.status_code == 201
        for accept in ("gzip", "identity"):
            response = http.get(url(store_id, key), headers={"range": "bytes=0-9", "accept-encoding": accept})
            assert response.status_code == 200
            assert response.headers["accept-ranges"] == "none"
            assert "content-range" not in response.headers
            assert response.content == content  # httpx decodes what comes gzipped
            sent = len(packed) if accept == "gzip" else len(content)
            assert response.headers["content-length"] == str(sent)
        assert http.head(url(store_id, key)).headers["accept-ranges"] == "none"


def test_the_empty_record(http: httpx.Client) -> None:
    store_id = http.post("/key-value-stores").json()["data"]["id"]
    assert http.put(url(store_id, "e"), content=b"").status_code == 201
    assert http.get(url(store_id, "e"), headers={"range": "bytes=0-"}).status_code == 416
    suffix = http.get(url(store_id, "e"), headers={"range": "bytes=-5"})
    assert (suffix.status_code, suffix.content) == (200, b"")


def test_a_range_through_a_runs_store(http: httpx.Client) -> None:
    started = http.post(f"/acts/~ranges-{secrets.token_hex(4)}/runs")
    assert started.status_code == 201, started.text
    run_id = started.json()["data"]["id"]
    path = f"/actor-runs/{run_id}/key-value-store/records/part"
    body = secrets.token_bytes(200 * KIB)
    assert http.put(path, content=body).status_code == 201
    response = http.get(path, headers={"range": "bytes=1000-1999"})
    assert response.status_code == 206
    assert response.content == body[1000:2000]
    assert response.headers["content-range"] == f"bytes 1000-1999/{len(body)}"


# --- the blob stores read only the range asked for


@pytest.fixture(params=["files", "s3"])
def blobs(
    request: pytest.FixtureRequest, backends: Backends, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BlobStore]:
    store: BlobStore
    if request.param == "files":
        store = FileBlobs(tmp_path / "blobs", fsync=False)
    else:
        seaweed = backends.seaweed
        for key, value in seaweed.env().items():
            monkeypatch.setenv(key, value)
        store = S3Blobs.from_url(seaweed.blob_store_url(f"ranges-{secrets.token_hex(6)}"), S3Settings())
    asyncio.run(store.open())
    yield store
    asyncio.run(store.close())


def test_a_blob_store_reads_only_the_range(blobs: BlobStore) -> None:
    data = random.Random(7).randbytes(3 * 1024 * KIB)  # several of either store's read chunks

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 256 * KIB):
            yield data[start : start + 256 * KIB]

    async def work() -> None:
        name = secrets.token_hex(16)
        await blobs.put(name, chunks())
        for start, end in (
            (0, 1),
            (5, 300_000),
            (1024 * KIB - 3, 2 * 1024 * KIB + 5),
            (len(data) - 10, len(data)),
        ):
            got = [chunk async for chunk in blobs.read(name, start, end)]
            # What comes out is exactly the range: nothing before it or past it was handed over.
            assert b"".join(got) == data[start:end]
        tail = [chunk async for chunk in blobs.read(name, len(data) - 100)]
        assert b"".join(tail) == data[-100:]
        assert [chunk async for chunk in blobs.read(name, 10, 10)] == []
        await blobs.delete([name])

    asyncio.run(work())
