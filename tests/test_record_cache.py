"""Records kept in each server process's memory: a write made anywhere on the machine (another worker, a
management command) is read at once everywhere, the cache stays within its bytes, and it keeps only small
bodies that live in the database, and nothing on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from satchel.service.record_cache import ENTRY_BYTES, MAX_BODY_BYTES, RecordCache
from satchel.settings import Settings
from satchel.storage import Storage, StoreRow
from satchel.storage.factory import build_storage
from satchel.storage.feed import StampFeed
from tests.conftest import TOKEN, apps_on, start_server, stop_server
from tests.harness.backends import Backends
from tests.harness.cli import run_cli
from tests.harness.engine import Body, owned_store
from tests.harness.inprocess import BASE_URL, InProcessApp

AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[InProcessApp, InProcessApp]]:
    """Two apps on one data dir, each with its own storage, caches and mapping of the stamp files: what two
    worker processes are to each other."""
    settings = Settings(data_dir=tmp_path / "data", token=TOKEN, rate_limit=False, log_level="warning")
    first = InProcessApp(settings)
    first.bootstrap(TOKEN)
    second = InProcessApp(settings)
    try:
        yield first, second
    finally:
        second.close()
        first.close()


def client(app: InProcessApp) -> httpx.Client:
    return httpx.Client(transport=app.transport, base_url=BASE_URL, headers=AUTH)


def cached_keys(app: InProcessApp) -> set[str]:
    return {key for _, key in app.app.services.records.cache._entries}


def test_a_write_in_one_process_is_read_at_once_in_the_other(
    two_processes: tuple[InProcessApp, InProcessApp],
) -> None:
    apps = two_processes
    clients = [client(app) for app in apps]
    store = clients[0].post("/v2/key-value-stores", params={"name": "shared"}).json()["data"]["id"]
    records = f"/v2/key-value-stores/{store}/records"
    for i in range(60):
        key = f"k{i % 3}"
        writer = clients[i % 2]
        put = writer.put(
            f"{records}/{key}", content=f"value {i}".encode(), headers={"content-type": "text/plain"}
        )
        assert put.status_code == 201
        for _ in range(2):  # the second read of each comes from the cache
            for reader in clients:
                got = reader.get(f"{records}/{key}")
                assert got.status_code == 200
                assert got.content == f"value {i}".encode()
                assert got.headers["etag"] == put.headers["etag"]
                head = reader.head(f"{records}/{key}")
                assert head.headers["etag"] == put.headers["etag"]
                assert head.headers["content-length"] == str(len(got.content))
        if i % 10 == 9:
            assert writer.delete(f"{records}/{key}").status_code == 204
            for reader in clients:
                assert reader.get(f"{records}/{key}").status_code == 404
                assert reader.head(f"{records}/{key}").status_code == 404
    assert all(cached_keys(app) for app in apps), "the reads above should have been kept"


def test_a_worker_that_died_between_commit_and_stamp_leaves_nothing_stale(
    two_processes: tuple[InProcessApp, InProcessApp],
) -> None:
    """A change committed without its stamp moving (its process died in between) is read once the dead
    process's replacement opens the stamps: opening gives every record a new stamp."""
    first, second = two_processes
    http = client(first)
    store_id = http.post("/v2/key-value-stores", params={"name": "torn"}).json()["data"]["id"]
    assert http.put(f"/v2/key-value-stores/{store_id}/records/k", content=b"before").status_code == 201
    assert http.get(f"/v2/key-value-stores/{store_id}/records/k").content == b"before"
    assert "k" in cached_keys(first)

    storage = second.app.services.storage
    records = storage.records
    store = second.run(storage.stores.by_id(store_id))
    assert store is not None
    db = records.db  # type: ignore[attr-defined]
    silent, db._on_record_change = db._on_record_change, None
    try:
        second.run(
            records.write(
                store.pk, "k", content_type="text/plain", content_encoding=None, body=Body(b"after"), now=1
            )
        )
    finally:
        db._on_record_change = silent
    assert http.get(f"/v2/key-value-stores/{store_id}/records/k").content == b"before"  # the stale entry

    restarted = StampFeed(storage.feed.path, storage.feed.records_path)  # type: ignore[attr-defined]
    second.run(restarted.open())
    second.run(restarted.close())
    assert http.get(f"/v2/key-value-stores/{store_id}/records/k").content == b"after"


def test_two_worker_processes_and_a_management_command_read_every_write_at_once(tmp_path: Path) -> None:
    """Real processes: a server with two workers, each request on a fresh connection (to whichever worker
    takes it), every record read twice after each write so that both workers have it cached; then
    `satchel import` writes beside the server, and every worker reads what it wrote."""
    server = start_server(tmp_path / "data", args=("--workers", "2"))
    try:
        with server.client() as http:
            store_id = http.post("/key-value-stores", params={"name": "shared"}).json()["data"]["id"]
        path = f"/key-value-stores/{store_id}/records/greeting"
        for round_ in range(40):
            with server.client() as fresh:
                assert fresh.put(path, content=f"hello {round_}".encode()).status_code == 201
            for _ in range(4):
                with server.client() as fresh:
                    assert fresh.get(path).text == f"hello {round_}"
        folder = tmp_path / "folder"
        folder.mkdir()
        (folder / "greeting.txt").write_text("imported")
        run_cli("import", str(folder), "--store", "shared", data_dir=server.data_dir)
        for _ in range(8):
            with server.client() as fresh:
                assert fresh.get(path).text == "imported"
    finally:
        stop_server(server)


def test_nothing_is_cached_on_postgresql(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Across PostgreSQL nodes a stamp per record write would cost a round trip: reads go to the database."""
    for server in apps_on("postgres+files", backends, tmp_path_factory):
        assert server.app is not None
        with server.client() as http:
            store_id = http.post("/key-value-stores", params={"name": "pg"}).json()["data"]["id"]
            assert http.put(f"/key-value-stores/{store_id}/records/k", content=b"v").status_code == 201
            for _ in range(3):
                assert http.get(f"/key-value-stores/{store_id}/records/k").content == b"v"
        assert server.app.app.services.records.cache.bytes == 0


# --- the cache on its own, over a real storage


def with_store(tmp_path: Path, work: object) -> None:
    async def run() -> None:
        storage = build_storage(Settings(data_dir=tmp_path), housekeeping=False)
        await storage.open()
        try:
            store = await owned_store(storage)
            await work(storage, store)  # type: ignore[operator]
        finally:
            await storage.close()

    asyncio.run(run())


async def write(storage: Storage, store: StoreRow, key: str, body: bytes) -> None:
    await storage.records.write(
        store.pk, key, content_type="application/octet-stream", content_encoding=None, body=Body(body), now=1
    )


async def read_through(cache: RecordCache, storage: Storage, store: StoreRow, key: str) -> bytes | None:
    """What the service does: the cache, else the stamp, the row, and keep it."""
    found = cache.get(store, key)
    if found is None:
        stamp = cache.stamp(store, key)
        found = await storage.records.read(store.pk, key)
        assert found is not None
        cache.keep(store, key, stamp, found)
    return found.inline


def test_the_cache_stays_within_its_bytes_and_lets_the_least_recently_read_go(tmp_path: Path) -> None:
    async def work(storage: Storage, store: StoreRow) -> None:
        per_entry = 1000 + ENTRY_BYTES
        cache = RecordCache(storage.feed, max_bytes=5 * per_entry)
        for i in range(8):
            await write(storage, store, f"k{i}", bytes([i]) * 1000)
        for i in range(5):
            assert await read_through(cache, storage, store, f"k{i}") == bytes([i]) * 1000
        assert cache.bytes == 5 * per_entry
        assert cache.get(store, "k0") is not None  # read again: now the most recent
        for i in range(5, 8):
            await read_through(cache, storage, store, f"k{i}")
            assert cache.bytes <= cache.max_bytes
        kept = {key for _, key in cache._entries}
        assert kept == {"k0", "k5", "k6", "k7", "k4"}

    with_store(tmp_path, work)


def test_only_small_bodies_kept_in_the_database_are_cached(tmp_path: Path) -> None:
    async def work(storage: Storage, store: StoreRow) -> None:
        cache = RecordCache(storage.feed, max_bytes=64 * 1024 * 1024)
        await write(storage, store, "small", b"s" * MAX_BODY_BYTES)
        await write(storage, store, "large", b"l" * (MAX_BODY_BYTES + 1))  # inline still, but too large
        await write(storage, store, "blob", b"b" * (1024 * 1024))  # past inline_max: a blob file
        for key in ("small", "large", "blob"):
            await read_through(cache, storage, store, key)
        assert {key for _, key in cache._entries} == {"small"}
        off = RecordCache(storage.feed, max_bytes=0)
        await read_through(off, storage, store, "small")
        assert off.bytes == 0

    with_store(tmp_path, work)


def test_a_read_that_raced_a_write_is_not_kept(tmp_path: Path) -> None:
    """The stamp is read before the row: a write committed after that read of the row moves the stamp, so
    the old row, kept under the old stamp, is never answered."""

    async def work(storage: Storage, store: StoreRow) -> None:
        cache = RecordCache(storage.feed, max_bytes=1024 * 1024)
        await write(storage, store, "k", b"old")
        stamp = cache.stamp(store, "k")
        old = await storage.records.read(store.pk, "k")
        assert old is not None
        await write(storage, store, "k", b"new")  # lands between the read and the keep
        cache.keep(store, "k", stamp, old)
        assert cache.get(store, "k") is None
        assert await read_through(cache, storage, store, "k") == b"new"
        assert await read_through(cache, storage, store, "k") == b"new"
        assert cache.get(store, "k") is not None

    with_store(tmp_path, work)


def test_stamps_are_shared_by_slot_and_differ_after_every_change(tmp_path: Path) -> None:
    async def run() -> None:
        one = StampFeed(tmp_path / "generation", tmp_path / "record-stamps")
        two = StampFeed(tmp_path / "generation", tmp_path / "record-stamps")
        await one.open()
        await two.open()
        try:
            seen = set()
            for pk, key in itertools.product((1, 2), ("a", "b", "c")):
                assert one.record_stamp(pk, key) == two.record_stamp(pk, key)
                before = one.record_stamp(pk, key)
                two.record_changed(pk, key)
                after = one.record_stamp(pk, key)
                assert after != before
                assert after not in seen
                seen.add(after)
        finally:
            await one.close()
            await two.close()
        assert one.record_stamp(1, "a") is None  # closed: nothing may be cached

    asyncio.run(run())
