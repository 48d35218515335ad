"""The BlobStore contract, for each blob store: files in a local folder, and S3 on a real SeaweedFS."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path

import obstore
import pytest

from satchel.backup.restore import in_use_by
from satchel.errors import SatchelError, TooLarge, Unavailable
from satchel.settings import S3Settings
from satchel.storage.blobs.base import BlobMissing, BlobStore
from satchel.storage.blobs.files import FileBlobs
from satchel.storage.blobs.owned import OwnedFolder, held, remove_unheld
from satchel.storage.blobs.s3 import S3Blobs
from tests.harness.seaweed import Seaweed, start_seaweed, stop_seaweed

KIB = 1024
MIB = 1024 * KIB
PART = 5 * MIB  # S3Settings' smallest part, so multipart bodies stay small
CHUNK = 100_000  # not a divisor of PART: parts and chunks do not line up


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    server = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    yield server
    stop_seaweed(server)


def fresh_bucket() -> str:
    return f"test-{secrets.token_hex(6)}"


def s3_blobs(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch, *, bucket: str | None = None) -> S3Blobs:
    for key, value in seaweed.env().items():
        monkeypatch.setenv(key, value)
    return S3Blobs.from_url(seaweed.blob_store_url(bucket or fresh_bucket()), S3Settings(part_bytes=PART))


@pytest.fixture(params=["files", "s3"])
def blobs(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BlobStore]:
    """An opened blob store of each kind; an S3 one has a bucket of its own."""
    store: BlobStore
    if request.param == "files":
        store = FileBlobs(tmp_path / "blobs", fsync=True)
    else:
        store = s3_blobs(request.getfixturevalue("seaweed"), monkeypatch)
    asyncio.run(store.open())
    yield store
    asyncio.run(store.close())


def new_name() -> str:
    return secrets.token_hex(16)


async def chunked(data: bytes, size: int = CHUNK) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(store: BlobStore, name: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(name)])


def assert_missing(store: BlobStore, name: str) -> None:
    with pytest.raises(BlobMissing):
        asyncio.run(read_all(store, name))


@pytest.mark.parametrize(
    "size",
    [0, 1000, PART, PART * 5 // 2],
    ids=["empty", "small", "one-part", "two-and-a-half-parts"],
)
def test_a_blob_reads_back_as_written(blobs: BlobStore, size: int) -> None:
    data = random.randbytes(size)
    name = new_name()
    assert asyncio.run(blobs.put(name, chunked(data))) == size
    assert asyncio.run(read_all(blobs, name)) == data


def test_a_body_of_one_chunk_larger_than_a_part_reads_back(blobs: BlobStore) -> None:
    data = random.randbytes(PART + 1)
    name = new_name()
    assert asyncio.run(blobs.put(name, chunked(data, len(data)))) == len(data)
    assert asyncio.run(read_all(blobs, name)) == data


def test_reading_a_missing_blob_raises_blob_missing(blobs: BlobStore) -> None:
    assert_missing(blobs, new_name())


def test_delete_removes_present_blobs_and_ignores_missing_ones(blobs: BlobStore) -> None:
    gone, kept, never = new_name(), new_name(), new_name()
    asyncio.run(blobs.put(gone, chunked(b"gone")))
    asyncio.run(blobs.put(kept, chunked(b"kept")))

    asyncio.run(blobs.delete([gone, never]))
    asyncio.run(blobs.delete([gone]))  # a second time: already gone is fine
    asyncio.run(blobs.delete([]))

    assert_missing(blobs, gone)
    assert asyncio.run(read_all(blobs, kept)) == b"kept"


def test_the_deployment_mark_reads_back_as_written(blobs: BlobStore) -> None:
    assert asyncio.run(blobs.mark()) is None
    mark = secrets.token_hex(16)
    asyncio.run(blobs.write_mark(mark))
    asyncio.run(blobs.write_mark(mark))  # again, as each node starting together does: harmless
    assert asyncio.run(blobs.mark()) == mark


class ClientWentAway(Exception):
    pass


@pytest.mark.parametrize(
    "fail_after",
    [0, 1000, PART * 3 // 2],
    ids=["before-any-byte", "within-the-first-part", "mid-multipart"],
)
@pytest.mark.parametrize("error_type", [TooLarge, ClientWentAway])
def test_a_failing_body_leaves_nothing_and_its_error_propagates(
    blobs: BlobStore, fail_after: int, error_type: type[Exception]
) -> None:
    error = error_type("The body failed.")

    async def body() -> AsyncIterator[bytes]:
        async for chunk in chunked(random.randbytes(fail_after)):
            yield chunk
        raise error

    name = new_name()
    with pytest.raises(type(error)) as raised:
        asyncio.run(blobs.put(name, body()))
    assert raised.value is error
    assert_missing(blobs, name)


def test_a_large_body_streams_through_in_bounded_memory(blobs: BlobStore) -> None:
    size = 64 * MIB
    written = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // (64 * KIB)):
            chunk = os.urandom(64 * KIB)
            written.update(chunk)
            yield chunk

    async def digest(name: str) -> bytes:
        read = hashlib.sha256()
        async for chunk in blobs.read(name):
            read.update(chunk)
        return read.digest()

    name = new_name()
    tracemalloc.start()
    try:
        assert asyncio.run(blobs.put(name, body())) == size
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert asyncio.run(digest(name)) == written.digest()
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # At most a part (5 MiB) and a chunk or two in Python's memory, not the 64 MiB body.
    assert put_peak < 3 * PART, f"put peaked at {put_peak / MIB:.1f} MiB"
    assert read_peak < 4 * MIB, f"read peaked at {read_peak / MIB:.1f} MiB"


def test_s3_blobs_keep_no_local_files(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> None:
    assert s3_blobs(seaweed, monkeypatch).local_path(new_name()) is None


# --- S3 only: the bucket, its objects and an object store that does not answer.


def etag(store: S3Blobs, name: str) -> str:
    async def head() -> str | None:
        return (await obstore.head_async(store._store, store.prefix + name))["e_tag"]

    found = asyncio.run(head())
    assert found is not None
    return found


def test_s3_opening_creates_the_bucket_once(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = fresh_bucket()
    first = s3_blobs(seaweed, monkeypatch, bucket=bucket)
    asyncio.run(first.open())
    name = new_name()
    asyncio.run(first.put(name, chunked(b"there")))
    # A second node opening the same bucket finds it, and its objects.
    second = s3_blobs(seaweed, monkeypatch, bucket=bucket)
    asyncio.run(second.open())
    assert asyncio.run(read_all(second, name)) == b"there"


def test_s3_objects_are_named_with_the_prefix(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> None:
    store = s3_blobs(seaweed, monkeypatch)
    asyncio.run(store.open())
    name = new_name()
    asyncio.run(store.put(name, chunked(b"x")))

    async def listed() -> list[str]:
        return [
            entry["path"] for entry in await obstore.list(store._store, prefix="satchel/").collect_async()
        ]

    assert asyncio.run(listed()) == [f"satchel/{name}"]


def test_s3_puts_up_to_a_part_in_one_request_and_more_in_parts(
    seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = s3_blobs(seaweed, monkeypatch)
    asyncio.run(store.open())
    single, multi = new_name(), new_name()
    asyncio.run(store.put(single, chunked(random.randbytes(PART))))
    asyncio.run(store.put(multi, chunked(random.randbytes(PART * 5 // 2))))
    # A multipart object's ETag ends in -N, N its number of parts.
    assert "-" not in etag(store, single)
    assert etag(store, multi).strip('"').endswith("-3")


def test_s3_a_failed_multipart_upload_is_aborted(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = fresh_bucket()
    store = s3_blobs(seaweed, monkeypatch, bucket=bucket)
    asyncio.run(store.open())

    async def body() -> AsyncIterator[bytes]:
        async for chunk in chunked(random.randbytes(PART * 3)):
            yield chunk
        raise TooLarge("The record is too large.")

    with pytest.raises(TooLarge):
        asyncio.run(store.put(new_name(), body()))
    # SeaweedFS keeps an upload's parts under the bucket's .uploads folder until it completes or aborts.
    assert seaweed_uploads(seaweed, bucket) == []


def seaweed_uploads(seaweed: Seaweed, bucket: str) -> list[str]:
    url = f"http://127.0.0.1:{seaweed.ports['filer']}/buckets/{bucket}/.uploads/"
    request = urllib.request.Request(url, headers={"accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return [entry["FullPath"] for entry in json.load(response).get("Entries") or []]


def test_s3_refused_credentials_are_not_an_outage(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = fresh_bucket()
    asyncio.run(s3_blobs(seaweed, monkeypatch, bucket=bucket).open())
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = S3Blobs.from_url(seaweed.blob_store_url(bucket), S3Settings())
    for operation in OPERATIONS:
        with pytest.raises(SatchelError, match="AWS_ACCESS_KEY_ID") as raised:
            asyncio.run(operation(store))
        assert not isinstance(raised.value, Unavailable), operation.__name__


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers, like a hung server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


async def open_(store: S3Blobs) -> None:
    await store.open()


async def put_small(store: S3Blobs) -> None:
    await store.put(new_name(), chunked(b"x" * 1000))


async def put_multipart(store: S3Blobs) -> None:
    await store.put(new_name(), chunked(random.randbytes(PART * 2)))


async def read(store: S3Blobs) -> None:
    await read_all(store, new_name())


async def delete(store: S3Blobs) -> None:
    await store.delete([new_name()])


OPERATIONS = [open_, put_small, put_multipart, read, delete]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.__name__.strip("_"))
@pytest.mark.parametrize("outage", ["refused", "hung"])
def test_s3_an_object_store_that_does_not_answer_is_unavailable(
    operation: Callable[[S3Blobs], Coroutine[None, None, None]],
    outage: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    port = closed_port() if outage == "refused" else request.getfixturevalue("silent_port")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    endpoint = f"http://127.0.0.1:{port}"
    store = S3Blobs.from_url(
        f"s3://satchel?endpoint={endpoint}", S3Settings(part_bytes=PART, timeout_seconds=0.3)
    )

    started = time.monotonic()
    with pytest.raises(Unavailable, match=f"The object store at {endpoint} does not answer") as raised:
        asyncio.run(operation(store))
    assert raised.value.status == 503
    assert raised.value.__cause__ is not None
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket?endpoint=http://127.0.0.1:8333", "bucket http://127.0.0.1:8333 us-east-1"),
        (
            "s3://my.bucket?endpoint=https://s3.example.com/&region=eu-west-1",
            "my.bucket https://s3.example.com eu-west-1",
        ),
        ("s3://bucket", "bucket https://s3.us-east-1.amazonaws.com us-east-1"),
        ("s3://bucket/?region=eu-central-1", "bucket https://s3.eu-central-1.amazonaws.com eu-central-1"),
    ],
)
def test_s3_urls_name_a_bucket_an_endpoint_and_a_region(url: str, expected: str) -> None:
    store = S3Blobs.from_url(url, S3Settings())
    assert f"{store.bucket} {store.endpoint} {store.region}" == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://bucket?endpoint=http://127.0.0.1:8333",
        "s3://?endpoint=http://127.0.0.1:8333",
        "s3://ab?endpoint=http://127.0.0.1:8333",
        "s3://Bucket?endpoint=http://127.0.0.1:8333",
        "s3://bucket/key?endpoint=http://127.0.0.1:8333",
        "s3://bucket?endpoint=ftp://127.0.0.1:8333",
        "s3://bucket?endpoint=127.0.0.1:8333",
        "s3://bucket?endpoint=http://127.0.0.1:port",
        "s3://bucket?endpoint=http://a&endpoint=http://b",
        "s3://bucket?endpoint=http://127.0.0.1:8333&secret=x",
        "s3://bucket?region=",
        "s3://bucket?endpoint",
    ],
)
def test_s3_bad_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(ValueError, match=r"s3://|bucket|endpoint|region"):
        S3Blobs.from_url(url, S3Settings())


def test_a_bad_s3_url_is_quoted_without_its_user_or_password() -> None:
    for url in ("s3://key:sekret@bucket", "s3://bucket?endpoint=ftp://key:sekret@host"):
        with pytest.raises(ValueError) as refused:
            S3Blobs.from_url(url, S3Settings())
        assert "sekret" not in str(refused.value)
        assert "***@" in str(refused.value)


HOLDER = """
import sys
from pathlib import Path
from satchel.storage.blobs.owned import OwnedFolder
OwnedFolder(Path(sys.argv[1])).make()
print("held", flush=True)
sys.stdin.read()
"""


def test_files_clear_what_dead_processes_left_even_under_a_live_process_id(tmp_path: Path) -> None:
    """After a restart (in a container above all) new processes get the ids of the dead ones: a folder is
    cleared because nobody holds it, whatever its name says, and kept while its process lives."""
    tmp_root = tmp_path / "blobs" / "tmp"
    left = tmp_root / "1-0000dead"  # process 1 is alive: an id said nothing
    (left / "partial").parent.mkdir(parents=True)
    (left / "partial").write_bytes(b"half a body")
    holding = tmp_root / "999999999-live"
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(holding)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == b"held\n"
            assert in_use_by(tmp_path) == 999999999
            blobs = FileBlobs(tmp_path / "blobs", fsync=False)
            asyncio.run(blobs.open())
            assert not left.exists()
            assert holding.is_dir()  # its process lives
            assert blobs.tmp.is_dir()
        finally:
            holder.kill()
    assert in_use_by(tmp_path) is None  # the lock went with the process, however it ended
    again = FileBlobs(tmp_path / "blobs", fsync=False)
    asyncio.run(again.open())
    assert sorted(tmp_root.iterdir()) == sorted([blobs.tmp, again.tmp])  # the first is still this process's
    asyncio.run(again.close())
    asyncio.run(blobs.close())
    assert list(tmp_root.iterdir()) == []


def test_a_folder_is_held_from_the_moment_it_bears_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's sweep may run between the folder's making and its locking: it may remove the folder
    then, but never leave this process holding a folder that is gone, or sweep one that bears its name."""
    root = tmp_path / "tmp"
    real_flock = fcntl.flock
    sweeps: list[list[str]] = []

    def swept_around(fd: int, operation: int) -> None:
        # The first try meets a sweep just before its lock, the second one just after (the sweeps' own
        # locks are taken as they are).
        monkeypatch.setattr(fcntl, "flock", real_flock)
        sweeps.append(sorted(p.name for p in root.iterdir()))
        if len(sweeps) == 1:
            remove_unheld(root)
        real_flock(fd, operation)
        if len(sweeps) == 2:
            remove_unheld(root)
        else:
            monkeypatch.setattr(fcntl, "flock", swept_around)

    monkeypatch.setattr(fcntl, "flock", swept_around)
    folder = OwnedFolder(root / "123-mine")
    folder.make()
    assert len(sweeps) == 2  # the folder swept before it was locked was made again, and kept
    assert all(name.startswith(".123-mine.") for [name] in sweeps)  # never under its own name unheld
    assert [p.name for p in root.iterdir()] == ["123-mine"]
    assert held(root / "123-mine")
    (root / "123-mine" / "part").write_bytes(b"written")  # where this process writes, it still is
    remove_unheld(root)
    assert (root / "123-mine" / "part").read_bytes() == b"written"
    folder.remove()
    assert list(root.iterdir()) == []
