"""A full disk under the embedded engine: 507 storage-full, reads keep working, writes resume by themselves.

The data dir is a small filesystem of its own (a loop-mounted ext4 image, or tmpfs); see harness/disk.py.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from satchel.storage.feed import StampFeed
from tests.harness.disk import MIB, fill, free_bytes, small_filesystem
from tests.harness.reading import all_keys, fetch
from tests.harness.rigs import SqliteRig, wait_until

FS_MIB = 128
RESERVE = 16 * MIB  # the engine's reserve (storage/sqlite/reserve.py)
ENV = {"SATCHEL_BLOB_GRACE_SECONDS": "0.5"}


@pytest.fixture(params=["ext4", "tmpfs"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteRig]:
    small_disk = SqliteRig(tmp_path)
    with small_filesystem(small_disk.data_dir, FS_MIB, kinds=(request.param,)):
        yield small_disk
    assert small_disk.integrity_problems() == []


def record(store_id: str, key: str) -> str:
    return f"/key-value-stores/{store_id}/records/{key}"


def put(http: httpx.Client, store_id: str, key: str, body: bytes, **headers: str) -> httpx.Response:
    response = http.put(record(store_id, key), content=body, headers=headers)
    assert response.status_code in (201, 507), response.text
    if response.status_code == 507:
        assert response.json()["error"]["type"] == "storage-full"
    return response


def put_until_full(http: httpx.Client, store_id: str, prefix: str, size: int, limit: int = 200) -> int:
    """PUT bodies of `size` until the first 507; how many went in."""
    for i in range(limit):
        if put(http, store_id, f"{prefix}-{i}", os.urandom(size)).status_code == 507:
            return i
    raise AssertionError(f"the disk never filled with {limit} x {size} bytes")


def delete_all(http: httpx.Client, store_id: str, prefix: str) -> int:
    keys = [k for k in all_keys(http, store_id) if k.startswith(prefix)]
    for key in keys:
        response = http.delete(record(store_id, key))
        assert response.status_code == 204, response.text
    return len(keys)


def writes_resume(http: httpx.Client, store_id: str, size: int = 2 * MIB) -> bool:
    """A write of `size` bytes succeeds within a few seconds, with no restart."""
    return wait_until(lambda: put(http, store_id, "resumed", os.urandom(size)).status_code == 201, 15, 0.5)


class Keepers:
    """Records written before the disk fills, read back while it is full: inline, a blob file, gzip."""

    def __init__(self, http: httpx.Client, store_id: str) -> None:
        self.store_id = store_id
        self.bodies = {
            "inline": b"small and inline " * 20,
            "blob": os.urandom(3 * MIB),
            "gz": b"zip " * 400_000,
        }
        for key, body in self.bodies.items():
            if key == "gz":
                assert put(
                    http, store_id, key, gzip.compress(body), **{"content-encoding": "gzip"}
                ).is_success
            else:
                assert put(http, store_id, key, body).is_success

    def check(self, http: httpx.Client) -> None:
        for key, body in self.bodies.items():
            assert fetch(http, self.store_id, key).sha == hashlib.sha256(body).hexdigest(), key
        assert set(self.bodies) <= set(all_keys(http, self.store_id))
        assert http.get(f"/key-value-stores/{self.store_id}").status_code == 200


def fill_through_the_api(http: httpx.Client, store_id: str, tag: str) -> None:
    """Blob files until the first 507, a 20 MiB body refused, then records small enough to live in SQLite."""
    assert put_until_full(http, store_id, f"{tag}-big", 2 * MIB) > 0
    assert put(http, store_id, f"{tag}-huge", os.urandom(20 * MIB)).status_code == 507
    put_until_full(http, store_id, f"{tag}-small", 60_000, 5000)


def test_a_full_disk_refuses_writes_with_507_and_keeps_reads(small_disk: SqliteRig) -> None:
    server = small_disk.start(env=ENV)
    try:
        with server.client() as http:
            store_id = http.post("/key-value-stores", params={"name": "full"}).json()["data"]["id"]
            keepers = Keepers(http, store_id)
            fill_through_the_api(http, store_id, "a")
            fill(small_disk.data_dir / "top-off")
            # A small record may still fit in room SQLite already holds; a blob cannot.
            put(http, store_id, "tiny", os.urandom(10))
            assert put(http, store_id, "refused", os.urandom(2 * MIB)).status_code == 507
            keepers.check(http)
            assert small_disk.integrity_problems() == []
    finally:
        small_disk.stop(server)


def test_with_two_workers_a_full_disk_is_507_from_the_process_that_writes_for_them(
    small_disk: SqliteRig,
) -> None:
    """With several workers one process writes for all: the database's own full disk, met there, comes back
    to the worker as the same 507 (it came back as a 500 with a traceback)."""
    server = small_disk.start(env=ENV, args=("--workers", "2"))
    try:
        with server.client() as http:
            store_id = http.post("/key-value-stores", params={"name": "full"}).json()["data"]["id"]
            fill_through_the_api(http, store_id, "w")  # its last part fills SQLite's own file
            fill(small_disk.data_dir / "top-off")
            for i in range(20):  # each answered by either worker: every answer a 201 or a 507
                put(http, store_id, f"after-{i}", os.urandom(60_000))
        port = server.base_url.rsplit(":", 1)[1]
        assert "unexpected error" not in (small_disk.data_dir.parent / f"server-{port}.log").read_text()
    finally:
        small_disk.stop(server)


def test_writes_resume_once_space_is_freed_outside_or_through_the_api(small_disk: SqliteRig) -> None:
    server = small_disk.start(env=ENV)
    filler = small_disk.data_dir / "filler"
    try:
        with server.client() as http:
            store_id = http.post("/key-value-stores", params={"name": "full"}).json()["data"]["id"]
            keepers = Keepers(http, store_id)
            assert fill(filler, leave=FS_MIB * MIB // 2) > 0
            fill_through_the_api(http, store_id, "a")
            fill(small_disk.data_dir / "top-off")
            assert put(http, store_id, "refused", os.urandom(2 * MIB)).status_code == 507
            # Space freed outside the server.
            filler.unlink()
            assert writes_resume(http, store_id)
            # Full again; deletes through the API go through, and their room comes back after the grace.
            fill_through_the_api(http, store_id, "b")
            fill(small_disk.data_dir / "top-off-2")
            assert put(http, store_id, "refused", os.urandom(2 * MIB)).status_code == 507
            assert delete_all(http, store_id, "a-") > 0
            assert writes_resume(http, store_id)
            keepers.check(http)
            # Failed uploads leave nothing behind; deleted blobs go once their grace is over.
            assert wait_until(lambda: small_disk.leftovers() == [], 10), small_disk.leftovers()
    finally:
        small_disk.stop(server)


def test_the_room_a_delete_frees_on_a_full_disk_stays_for_deletes(small_disk: SqliteRig) -> None:
    """Uploads beside deletes on a full disk: the reserve the first delete gives up is not theirs. They had
    taken it all, after which every delete answered 507, after a restart too, until room was made outside."""
    server = small_disk.start(env=ENV, args=("--workers", "2"))
    reserve = small_disk.data_dir / "reserve"
    try:
        with server.client() as http:
            kept = http.post("/key-value-stores", params={"name": "kept"}).json()["data"]["id"]
            full = http.post("/key-value-stores", params={"name": "full"}).json()["data"]["id"]
            fill_through_the_api(http, full, "f")
            fill(small_disk.data_dir / "top-off")
            keys = [k for k in all_keys(http, full) if k.startswith("f-")]
            # The reserve given up, as a delete that finds the disk full gives it (which delete does is not
            # sure: one may fit in pages the database file already holds).
            os.truncate(reserve, 0)
            room = free_bytes(small_disk.data_dir)
            assert room >= RESERVE // 2
            for i in range(40):  # 8 MiB of uploads, inline and in blob files, where 16 MiB came free
                answer = put(http, kept, f"upload-{i}", os.urandom(200_000 if i % 2 else 1_000))
                assert answer.status_code == 507
                assert "only" in answer.json()["error"]["message"]
            assert free_bytes(small_disk.data_dir) >= room - MIB  # the room stays for deletes
            for key in keys[:3]:
                assert http.delete(record(full, key)).status_code == 204
            assert http.delete(f"/key-value-stores/{full}").status_code == 204
            assert writes_resume(http, kept)
    finally:
        small_disk.stop(server)


def test_a_server_started_on_a_full_disk_serves_reads_and_deletes(small_disk: SqliteRig) -> None:
    server = small_disk.start(env=ENV)
    reserve = small_disk.data_dir / "reserve"
    try:
        with server.client() as http:
            store_id = http.post("/key-value-stores", params={"name": "full"}).json()["data"]["id"]
            keepers = Keepers(http, store_id)
            fill_through_the_api(http, store_id, "a")
            assert delete_all(http, store_id, "a-") > 0
            # With room again, the engine takes its reserve back.
            assert wait_until(lambda: reserve.exists() and reserve.stat().st_size == RESERVE, 15)
    finally:
        small_disk.stop(server)
    fill(small_disk.data_dir / "filled-while-down")
    assert free_bytes(small_disk.data_dir) < MIB
    server = small_disk.start(env=ENV)
    try:
        with server.client() as http:
            keepers.check(http)
            fill(small_disk.data_dir / "top-off")
            assert put(http, store_id, "refused", os.urandom(2 * MIB)).status_code == 507
            (small_disk.data_dir / "filled-while-down").unlink()
            assert writes_resume(http, store_id)
            keepers.check(http)
    finally:
        small_disk.stop(server)


def test_a_full_disk_answers_every_request_with_a_status(small_disk: SqliteRig) -> None:
    """No request on a full disk ends in a 500 or a dropped connection (the clients retry 5xx slowly)."""
    server = small_disk.start(env=ENV)
    try:
        with server.client() as http:
            store_id = http.post("/key-value-stores", params={"name": "statuses"}).json()["data"]["id"]
            for size in (10, 200_000):
                put(http, store_id, f"old-{size}", os.urandom(size))
            fill(small_disk.data_dir / "filler")
            seen = set()
            for size in (0, 10, 1000, 200_000, 5 * MIB):
                seen.add(put(http, store_id, f"k{size}", os.urandom(size)).status_code)
                seen.add(http.get(record(store_id, f"k{size}")).status_code)
                seen.add(http.delete(record(store_id, f"k{size}")).status_code)
            for key in ("old-10", "old-200000"):
                seen.add(http.get(record(store_id, key)).status_code)
                seen.add(http.delete(record(store_id, key)).status_code)
            seen.add(http.post("/key-value-stores", params={"name": "another"}).status_code)
            seen.add(http.get("/key-value-stores").status_code)
            seen.add(http.get(f"/key-value-stores/{store_id}/keys").status_code)
            assert seen <= {200, 201, 204, 404, 507}, seen
    finally:
        small_disk.stop(server)


@pytest.mark.parametrize("kind", ["ext4", "tmpfs"])
def test_the_stamp_files_are_allocated_before_they_are_written(kind: str, tmp_path: Path) -> None:
    """The change feed's files are memory-mapped, and writing a page of a sparse file on a full disk kills the
    process (SIGBUS). Their blocks are allocated first: files made before the disk filled open and take new
    stamps; a file that must be made on a full disk is refused with ENOSPC, in a process that lives on."""
    target = tmp_path / "disk"
    with small_filesystem(target, 8, kinds=(kind,)):

        async def open_feed() -> None:
            feed = StampFeed(target / "generation", target / "record-stamps")
            await feed.open()
            try:
                before = feed.record_stamp(1, "k")
                feed.record_changed(1, "k")
                assert feed.record_stamp(1, "k") != before
                await feed.publish()
            finally:
                await feed.close()

        asyncio.run(open_feed())  # made with room to spare
        fill(target / "filler")
        assert free_bytes(target) < 32 * 1024  # less than the record stamps take
        asyncio.run(open_feed())  # reopened full: already allocated, so written safely
        (target / "record-stamps").unlink()
        fill(target / "filler-2")
        with pytest.raises(OSError, match="No space left"):
            asyncio.run(open_feed())
