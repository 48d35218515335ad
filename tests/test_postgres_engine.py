"""What only the PostgreSQL engine must show: key order and index use, concurrent migrations, the
LISTEN/NOTIFY feed, outages and recovery without a restart, and writers racing on one key.

(What every engine must do is the contract suite's.) One real PostgreSQL serves the module; each test gets a
fresh database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from satchel.clock import now_ms
from satchel.errors import Unavailable
from satchel.settings import PostgresSettings
from satchel.storage.blobs.files import FileBlobs
from satchel.storage.postgres import PostgresEngine, PostgresFeed, migrate
from satchel.storage.postgres.keys import key_page
from satchel.storage.postgres.migrations import STEPS
from satchel.storage.postgres.records import SOME_BLOBS
from satchel.storage.rows import GeneralAccess, NewStore, StoreRow, StoreUsage
from tests.harness.postgres import Postgres, start_postgres, stop_postgres

INLINE_MAX = 1024
SETTINGS = PostgresSettings(pool_min=1, pool_max=8, timeout_seconds=5)
_databases = itertools.count()


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield server
    finally:
        stop_postgres(server)


@pytest.fixture
def dsn(pg: Postgres) -> str:
    pg.start()  # in case a test before this one left it stopped
    return pg.create_database(f"test_{next(_databases)}")


class Body:
    """An upload body, in chunks; `gate` (when given) holds the upload after its first chunk."""

    def __init__(self, data: bytes, *, chunk: int = 1500, gate: asyncio.Event | None = None) -> None:
        self.data = data
        self.raw_size = len(data)
        self.chunk = chunk
        self.gate = gate

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), self.chunk):
            yield self.data[start : start + self.chunk]
            if self.gate is not None:
                await self.gate.wait()


@asynccontextmanager
async def opened(dsn: str, root: Path) -> AsyncIterator[PostgresEngine]:
    blobs = FileBlobs(root / "blobs", fsync=False)
    await blobs.open()
    engine = PostgresEngine(dsn, SETTINGS, blobs, inline_max=INLINE_MAX, max_record_bytes=1 << 20)
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()
        await blobs.close()


@asynccontextmanager
async def feed(dsn: str) -> AsyncIterator[PostgresFeed]:
    changes = PostgresFeed(dsn)
    await changes.open()
    try:
        yield changes
    finally:
        await changes.close()


async def a_store(engine: PostgresEngine, name: str = "store") -> StoreRow:
    if await engine.users.by_id("u1") is None:
        await engine.users.create("u1", "alice", 1, default_general_access=GeneralAccess.RESTRICTED)
    store, _ = await engine.stores.create(
        NewStore(f"id-{name}", "u1", name, GeneralAccess.RESTRICTED, "secret", None, now_ms())
    )
    return store


async def put(
    engine: PostgresEngine, store_pk: int, key: str, data: bytes, content_type: str = "a/b"
) -> None:
    await engine.records.write(
        store_pk, key, content_type=content_type, content_encoding=None, body=Body(data), now=now_ms()
    )


async def body_of(engine: PostgresEngine, store_pk: int, key: str) -> tuple[str, bytes]:
    read = await engine.records.read(store_pk, key)
    assert read is not None
    return read.head.content_type, b"".join([chunk async for chunk in read.stream()])


async def eventually(check: Any, seconds: float = 5.0) -> float:
    """Wait until check() is true; returns how long it took."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < seconds, "the condition never came true"
        await asyncio.sleep(0.01)
    return time.monotonic() - began


async def first(fetch: Callable[[], Awaitable[list[str]]], seconds: float = 5.0) -> list[str]:
    """Poll until fetch() returns something; return that."""
    async with asyncio.timeout(seconds):
        while True:
            if found := await fetch():
                return found
            await asyncio.sleep(0.01)


def blob_files(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs").glob("??/*") if p.is_file()}


def test_keys_come_back_in_utf8_binary_order(dsn: str, tmp_path: Path) -> None:
    keys = ["a", "A", "b", "B", "aa", "aA", "Aa", "AA", "a-b", "a_b", "a.b", "a!b", "a(b", "a)b", "a'b",
            "a~", "0", "9", "-", "_", "(", "Z", "z", "ab", "aB", "é", "ÿ", "ā", "€", "😀", "a\U0010ffff",
            "a\U0010ffffb", "b\uffff", "b\ue000"]  # fmt: skip
    expected = sorted(keys, key=lambda k: k.encode())

    async def main() -> None:
        async with opened(dsn, tmp_path) as engine:
            store = await a_store(engine)
            for key in keys:
                await put(engine, store.pk, key, key.encode())
            listed = await engine.records.keys(store.pk, prefix="", exclusive_start_key=None, limit=100)
            assert [item.key for item in listed] == expected
            assert [item.size for item in listed] == [len(k.encode()) for k in expected]
            paged: list[str] = []
            after = None
            while page := await engine.records.keys(store.pk, prefix="", exclusive_start_key=after, limit=3):
                paged += [item.key for item in page]
                after = page[-1].key
            assert paged == expected
            for prefix in ("a", "A", "a\U0010ffff", "b", "€", "zz"):
                listed = await engine.records.keys(
                    store.pk, prefix=prefix, exclusive_start_key=None, limit=100
                )
                assert [i.key for i in listed] == [k for k in expected if k.startswith(prefix)], prefix
            listed = await engine.records.keys(store.pk, prefix="a", exclusive_start_key="a(b", limit=100)
            assert [i.key for i in listed] == [
                k for k in expected if k.startswith("a") and k.encode() > b"a(b"
            ]
            iterated = [read.head.key async for read in engine.records.iterate(store.pk, prefix="a")]
            assert iterated == [k for k in expected if k.startswith("a")]

    asyncio.run(main())


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _literal(value: object) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


def test_key_pages_are_index_range_scans(dsn: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with opened(dsn, tmp_path) as engine:
            stores = [await a_store(engine, f"s{n}") for n in range(3)]
            async with engine.db.connection() as conn:
                for store in stores:
                    await conn.execute(
                        "INSERT INTO records (store_pk, key, content_type, size, raw_size, modified_at, body)"
                        " SELECT $1, 'k' || i, 'text/plain', 1, 1, 0, '\\x00'"
                        " FROM generate_series(1, 40000) i",
                        store.pk,
                    )
                await conn.execute("ANALYZE records")
                cases = [("", None), ("k1", None), ("k1", "k15"), ("", "k5"), ("k39", "k1")]
                await conn.execute("SET plan_cache_mode = force_generic_plan")
                for number, (prefix, after) in enumerate(cases):
                    sql, args = key_page("key, size", stores[1].pk, prefix=prefix, after=after, limit=1000)
                    # The plan for these values, and the generic one (for any values) that PostgreSQL may
                    # switch a prepared statement to after its fifth run.
                    await conn.execute(f"PREPARE page_{number} AS {sql}")
                    values = ", ".join(_literal(arg) for arg in args)
                    custom = (f"EXPLAIN (FORMAT JSON) {sql}", args)
                    generic: tuple[str, list[Any]] = (
                        f"EXPLAIN (FORMAT JSON) EXECUTE page_{number}({values})",
                        [],
                    )
                    for explain, explain_args in (custom, generic):
                        plan = json.loads(await conn.fetchval(explain, *explain_args))
                        nodes = list(_nodes(plan[0]["Plan"]))
                        assert [node["Node Type"] for node in nodes] == ["Limit", "Index Scan"], (
                            explain,
                            nodes,
                        )
                        scan = nodes[1]
                        assert scan["Index Name"] == "records_pkey"
                        assert "key >" in scan["Index Cond"], scan  # the range bounds the scan; no filter
                        assert "Filter" not in scan
                    assert "$2" in scan["Index Cond"], scan  # the last one was generic indeed
                    rows = await conn.fetch(sql, *args)
                    keys = [row["key"] for row in rows]
                    assert keys == sorted(keys, key=str.encode)
                    assert all(k.startswith(prefix) and (after is None or k > after) for k in keys)

    asyncio.run(main())


def test_the_blob_sample_taken_at_each_start_reads_no_inline_record(dsn: str, tmp_path: Path) -> None:
    """A node's start samples records that name a blob (pairing.py); with bodies mostly inline, a scan of
    the table for them would read every record, at every start."""

    async def main() -> None:
        async with opened(dsn, tmp_path) as engine:
            store = await a_store(engine)
            async with engine.db.connection() as conn:
                await conn.execute(
                    "INSERT INTO records (store_pk, key, content_type, size, raw_size, modified_at, body)"
                    " SELECT $1, 'k' || i, 'text/plain', 1, 1, 0, '\\x00' FROM generate_series(1, 50000) i",
                    store.pk,
                )
                await conn.execute("ANALYZE records")
                plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {SOME_BLOBS}", 3))
                scans = [node for node in _nodes(plan[0]["Plan"]) if "Scan" in node["Node Type"]]
                assert [scan.get("Index Name") for scan in scans] == ["records_by_blob"], scans
            await put(engine, store.pk, "large", b"x" * (INLINE_MAX + 1))
            assert len(await engine.records.some_blobs(3)) == 1

    asyncio.run(main())


def test_engines_migrating_one_fresh_database_at_once_all_succeed(dsn: str, tmp_path: Path) -> None:
    async def main() -> None:
        blobs = FileBlobs(tmp_path / "blobs", fsync=False)
        engines = [
            PostgresEngine(dsn, SETTINGS, blobs, inline_max=INLINE_MAX, max_record_bytes=1 << 20)
            for _ in range(4)
        ]
        try:
            results = await asyncio.gather(*(e.open() for e in engines), migrate(dsn), migrate(dsn))
            assert results[-2:] == [len(STEPS), len(STEPS)]
            versions = await engines[0].db.fetch("SELECT version FROM schema_version")
            assert [row["version"] for row in versions] == list(range(1, len(STEPS) + 1))
            await engines[1].users.create("u1", "alice", 1, default_general_access=GeneralAccess.RESTRICTED)
            assert await engines[3].users.by_name("alice") is not None
        finally:
            for engine in engines:
                await engine.close()

    asyncio.run(main())


def test_a_read_costs_one_round_trip_the_pool_sends_no_reset(dsn: str, tmp_path: Path) -> None:
    """The pool takes a connection back without asyncpg's default reset (`... RESET ALL`, a second round trip
    per query): each backend's last statement, as PostgreSQL shows it, is the read itself."""

    async def main() -> None:
        async with opened(dsn, tmp_path) as engine:
            store = await a_store(engine)
            await put(engine, store.pk, "k", b"body")
            # As many reads at once as the pool has connections, so every pooled backend serves one last.
            reads = await asyncio.gather(
                *(engine.records.read(store.pk, "k") for _ in range(SETTINGS.pool_max))
            )
            assert all(read is not None and read.inline == b"body" for read in reads)
            watcher = await asyncpg.connect(dsn)
            try:
                last = await watcher.fetch(
                    "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND application_name = ''"
                )
            finally:
                await watcher.close()
            queries = [row["query"] for row in last]
            assert queries, "no pooled backend found"
            assert not any("RESET ALL" in query for query in queries), queries
            assert any(query.startswith("SELECT") and "FROM records" in query for query in queries), queries

    asyncio.run(main())


def test_a_publish_reaches_every_feed(dsn: str) -> None:
    async def main() -> None:
        async with feed(dsn) as one, feed(dsn) as other:
            before, before_other = one.stamp(), other.stamp()
            await asyncio.sleep(0.1)
            assert (one.stamp(), other.stamp()) == (before, before_other)  # idle: caches stay good
            await one.publish()
            assert one.stamp() != before  # this node's caches at once
            took = await eventually(lambda: other.stamp() != before_other, seconds=2)
            assert took < 2

    asyncio.run(main())


def test_a_feed_without_its_database_lets_nothing_be_cached(dsn: str, pg: Postgres) -> None:
    async def main() -> None:
        async with feed(dsn) as one, feed(dsn) as other:
            try:
                await asyncio.to_thread(pg.stop)
                await eventually(lambda: other.stamp() != other.stamp())
                with pytest.raises(Unavailable) as caught:
                    await one.publish()
                assert caught.value.__cause__ is not None
            finally:
                await asyncio.to_thread(pg.start)
            await eventually(lambda: other.stamp() == other.stamp(), seconds=10)  # listening again
            before = other.stamp()
            await one.publish()
            await eventually(lambda: other.stamp() != before, seconds=2)

    asyncio.run(main())


def test_a_frozen_database_is_unavailable_within_the_timeout(dsn: str, pg: Postgres, tmp_path: Path) -> None:
    """A database that accepts and never answers: each call gives up after postgres.timeout_seconds, not
    twice that (the timed-out connection's release waited as long again for a cancel that never came)."""

    async def main() -> None:
        async with opened(dsn, tmp_path) as engine:
            store = await a_store(engine)
            await put(engine, store.pk, "small", b"s" * 10)
            pg.pause()
            try:
                attempts: list[Callable[[], Awaitable[object]]] = [
                    lambda: engine.records.read(store.pk, "small"),
                    lambda: put(engine, store.pk, "small", b"n"),
                ]
                for attempt in attempts:
                    began = time.monotonic()
                    with pytest.raises(Unavailable):
                        await attempt()
                    assert time.monotonic() - began < SETTINGS.timeout_seconds + 2.0
            finally:
                pg.resume()
            assert await body_of(engine, store.pk, "small") == ("a/b", b"s" * 10)

    asyncio.run(main())


@pytest.mark.parametrize("immediate", [False, True], ids=["fast-shutdown", "crash"])
def test_an_outage_is_unavailable_and_the_same_engine_recovers(
    dsn: str, pg: Postgres, tmp_path: Path, immediate: bool
) -> None:
    async def main() -> None:
        async with opened(dsn, tmp_path) as engine:
            store = await a_store(engine)
            await put(engine, store.pk, "small", b"s" * 10)
            await put(engine, store.pk, "large", b"L" * 5000)
            in_flight = asyncio.create_task(engine.db.fetchval("SELECT pg_sleep(30)"))
            await asyncio.sleep(0.2)
            try:
                await asyncio.to_thread(pg.stop, immediate=immediate)
                with pytest.raises(Unavailable) as caught:
                    await in_flight
                assert isinstance(
                    caught.value.__cause__, (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
                )
                attempts = [
                    engine.users.by_token_hash("x"),
                    engine.users.create("u2", "bob", 1, default_general_access=GeneralAccess.RESTRICTED),
                    engine.stores.by_id(store.id),
                    engine.stores.add_usage({store.pk: StoreUsage(1, 0, now_ms())}),
                    engine.records.read(store.pk, "small"),
                    engine.records.keys(store.pk, prefix="", exclusive_start_key=None, limit=10),
                    put(engine, store.pk, "small", b"new"),
                    put(engine, store.pk, "large", b"N" * 5000),
                    engine.records.delete(store.pk, "small", now=now_ms()),
                    engine.stores.delete(store.pk),
                ]
                for attempt in attempts:
                    with pytest.raises(Unavailable) as caught:
                        await attempt
                    assert caught.value.__cause__ is not None
            finally:
                await asyncio.to_thread(pg.start)
            # The same engine, at once: the pool replaces the connections the restart closed.
            assert await body_of(engine, store.pk, "small") == ("a/b", b"s" * 10)
            assert await body_of(engine, store.pk, "large") == ("a/b", b"L" * 5000)
            await put(engine, store.pk, "small", b"after")
            assert await body_of(engine, store.pk, "small") == ("a/b", b"after")
            # The failed writes left nothing behind.
            assert await engine.records.abandoned_uploads(now_ms() + 1000, 10) == []
            named = await engine.db.fetch("SELECT blob FROM records WHERE blob IS NOT NULL")
            assert blob_files(tmp_path) == {row["blob"] for row in named}

    asyncio.run(main())


def test_racing_writers_of_one_key_leave_one_consistent_record(dsn: str, tmp_path: Path) -> None:
    sizes = [100, 3000, 700, 5000, 1024, 1025]  # inline and blob, on both sides of the limit

    def value(i: int) -> bytes:
        return bytes([i % 251]) * sizes[i % len(sizes)]

    async def main() -> None:
        async with opened(dsn, tmp_path) as engine:
            store = await a_store(engine)
            writes = [put(engine, store.pk, "k", value(i), f"application/x-{i}") for i in range(60)]
            writes += [put(engine, store.pk, f"other-{i % 5}", value(i)) for i in range(20)]
            await asyncio.gather(*writes)

            content_type, data = await body_of(engine, store.pk, "k")
            winner = int(content_type.rsplit("-", 1)[1])
            assert data == value(winner)
            head = await engine.records.head(store.pk, "k")
            assert head is not None
            assert (head.size, head.raw_size) == (len(data), len(data))

            keys = await engine.records.keys(store.pk, prefix="", exclusive_start_key=None, limit=100)
            assert len(keys) == 6
            total = 0
            for item in keys:
                total += len((await body_of(engine, store.pk, item.key))[1])
            assert sum(item.size for item in keys) == total
            row = await engine.stores.by_id(store.id)
            assert row is not None
            assert row.stats.storage_bytes == total
            assert row.stats.write_count == 80

            # Every blob written is named by exactly one record or is on the dead list, once.
            live = {
                r["blob"] for r in await engine.db.fetch("SELECT blob FROM records WHERE blob IS NOT NULL")
            }
            dead = await engine.records.dead_blobs(now_ms() + 1000, 1000)
            blob_writes = sum(1 for i in range(60) if len(value(i)) > INLINE_MAX)
            blob_writes += sum(1 for i in range(20) if len(value(i)) > INLINE_MAX)
            assert len(live) + len(dead) == blob_writes
            assert not live & set(dead)
            assert blob_files(tmp_path) == live | set(dead)
            assert await engine.records.abandoned_uploads(now_ms() + 1000, 10) == []

    asyncio.run(main())


def test_an_abandoned_upload_is_found_and_its_late_commit_refused(dsn: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with opened(dsn, tmp_path) as engine:
            store = await a_store(engine)

            # A writer that stops mid-upload (a crash, a lost client) leaves its upload listed.
            gate = asyncio.Event()
            body = Body(b"x" * 6000, gate=gate)
            stuck = asyncio.create_task(
                engine.records.write(
                    store.pk, "k", content_type="a/b", content_encoding=None, body=body, now=1
                )
            )
            names = await first(lambda: engine.records.abandoned_uploads(now_ms() + 1000, 10))
            assert await engine.records.abandoned_uploads(now_ms() - 60_000, 10) == []

            # Housekeeping takes it (the blob, then the name); the writer then finishes and must not commit.
            await engine.blobs.delete(names)
            await engine.records.forget_blobs(names)
            gate.set()
            with pytest.raises(Unavailable):
                await stuck
            assert await engine.records.read(store.pk, "k") is None
            assert blob_files(tmp_path) == set()
            assert await engine.records.abandoned_uploads(now_ms() + 1000, 10) == []
            row = await engine.stores.by_id(store.id)
            assert row is not None
            assert (row.stats.write_count, row.stats.storage_bytes) == (0, 0)

            # A writer cancelled mid-upload (as good as dead) leaves its name for housekeeping.
            gate = asyncio.Event()
            cancelled = asyncio.create_task(
                engine.records.write(
                    store.pk, "k", content_type="a/b", content_encoding=None,
                    body=Body(b"y" * 6000, gate=gate), now=2,
                )
            )  # fmt: skip
            await first(lambda: engine.records.abandoned_uploads(now_ms() + 1000, 10))
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            assert len(await engine.records.abandoned_uploads(now_ms() + 1000, 10)) == 1

    asyncio.run(main())
