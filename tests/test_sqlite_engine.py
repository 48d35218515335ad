"""The embedded engine's own housekeeping, in process: its writer thread, orphan scan and space reserve."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from satchel.storage.base import NewStore
from satchel.storage.sqlite import engine as engine_module
from satchel.storage.sqlite.engine import BLOB_NAMED, SqliteEngine
from satchel.storage.sqlite.reserve import Reserve
from satchel.storage.sqlite.writer import Writer


class Body:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.raw_size = len(data)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


class FailingDisk(sqlite3.Connection):
    """A connection whose COMMIT and ROLLBACK fail, as on a disk giving I/O errors."""

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
        if sql in ("COMMIT", "ROLLBACK"):
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)  # type: ignore[arg-type]


def test_the_writer_survives_a_connection_that_cannot_roll_back(tmp_path: Path) -> None:
    connections = []

    def connect() -> sqlite3.Connection:
        factory = FailingDisk if not connections else sqlite3.Connection
        conn = sqlite3.connect(
            tmp_path / "db", isolation_level=None, check_same_thread=False, factory=factory
        )
        connections.append(conn)
        return conn

    def job(conn: sqlite3.Connection) -> int:
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        return 1

    async def run() -> None:
        writer = Writer(connect)
        writer.start()
        try:
            with pytest.raises(sqlite3.OperationalError):
                await asyncio.wait_for(writer.run(job), 5)
            # The next write gets a fresh connection instead of waiting forever on a dead thread.
            assert await asyncio.wait_for(writer.run(job), 5) == 1
        finally:
            writer.stop()

    asyncio.run(run())
    assert len(connections) == 2


def _engine(data_dir: Path) -> SqliteEngine:
    return SqliteEngine(data_dir, inline_max=0, max_record_bytes=1 << 30, blob_grace_ms=0, reserve_bytes=0)


def test_the_orphan_scan_looks_blobs_up_by_index(tmp_path: Path) -> None:
    """One lookup per blob file: without an index each was a scan of every record, quadratic in all."""

    async def run() -> None:
        engine = _engine(tmp_path)
        await engine.open()
        await engine.close()

    asyncio.run(run())
    with sqlite3.connect(tmp_path / "satchel.db") as db:
        plan = " ".join(str(row) for row in db.execute(f"EXPLAIN QUERY PLAN {BLOB_NAMED}", ("x",)))
    assert "records_by_blob" in plan, plan


def test_blob_files_left_by_a_crash_go_without_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "ORPHAN_AGE_SECONDS", 1.0)

    async def run() -> None:
        engine = _engine(tmp_path)
        await engine.open()
        try:
            await engine.create_user("u", "admin", 0)
            store, _ = await engine.create_store(NewStore("s", "u", "kept", "RESTRICTED", "secret", None, 0))
            await engine.write_record(
                store.pk, "k", content_type="a", content_encoding=None, body=Body(b"v"), now=1
            )
            # What a crash between a blob's rename and its commit leaves: a file no record names.
            orphan = engine.blobs.path("ff" + "0" * 30)
            orphan.parent.mkdir(exist_ok=True)
            orphan.write_bytes(b"half of nothing")
            for _ in range(100):
                if not orphan.exists():
                    break
                await asyncio.sleep(0.1)
            assert not orphan.exists()
            record = await engine.read_record(store.pk, "k", now=2)
            assert record is not None
            assert record.path is not None
            assert record.path.read_bytes() == b"v"
        finally:
            await engine.close()

    asyncio.run(run())


def test_the_reserve_is_held_only_with_room_to_spare_and_given_up_at_once(tmp_path: Path) -> None:
    reserve = Reserve(tmp_path / "reserve", 1 << 20)
    assert reserve.restore()
    assert reserve.held() == 1 << 20
    assert reserve.release()
    assert reserve.held() == 0
    assert not reserve.release()
    st = os.statvfs(tmp_path)
    huge = Reserve(tmp_path / "huge", st.f_bavail * st.f_frsize)  # twice that is never free
    assert not huge.restore()
    assert huge.held() == 0


def test_hot_path_caches_stay_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading many stores, tokens and grants keeps each cache under its cap, and lookups stay right."""
    monkeypatch.setattr(engine_module, "CACHE_MAX", 5)

    async def run() -> None:
        engine = _engine(tmp_path)
        await engine.open()
        try:
            await engine.create_user("u", "admin", 0)
            await engine.create_user("v", "other", 0)
            stores = []
            for i in range(12):
                store, _ = await engine.create_store(
                    NewStore(f"s{i}", "u", f"n{i}", "RESTRICTED", "x", None, 0)
                )
                stores.append(store)
                await engine.add_token("u", f"hash{i}", 0)
            for _ in range(2):  # twice: the second round reads through a cache that has started over
                for i, store in enumerate(stores):
                    found = await engine.store_by_id(store.id, cached=True)
                    assert found is not None
                    assert found.name == f"n{i}"
                    user = await engine.user_by_token_hash(f"hash{i}")
                    assert user is not None
                    assert user.id == "u"
                    assert await engine.grant_for(store.pk, "v") is None
                    assert len(engine._stores_by_id) <= 5
                    assert len(engine._users_by_token) <= 5
                    assert len(engine._grants) <= 5
        finally:
            await engine.close()

    asyncio.run(run())


def test_the_wal_stays_bounded_under_sustained_writes_and_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers and readers never pause, yet the checkpoints keep the WAL near its limit."""
    monkeypatch.setattr(engine_module, "WAL_LIMIT_BYTES", 1 << 20)
    monkeypatch.setattr(engine_module, "CHECKPOINT_SECONDS", 0.05)

    async def run() -> int:
        engine = SqliteEngine(tmp_path, inline_max=1 << 17, max_record_bytes=1 << 30, reserve_bytes=0)
        await engine.open()
        largest = 0
        try:
            await engine.create_user("u", "admin", 0)
            store, _ = await engine.create_store(NewStore("s", "u", "wal", "RESTRICTED", "secret", None, 0))
            body = os.urandom(64 * 1024)  # inline: the bodies themselves go through the WAL
            stop = False

            async def reader() -> None:
                while not stop:
                    await engine.read_record(store.pk, "k7", now=1)
                    await asyncio.sleep(0)

            readers = [asyncio.create_task(reader()) for _ in range(4)]
            for i in range(1200):  # 75 MiB in all
                await engine.write_record(
                    store.pk, f"k{i % 50}", content_type="a", content_encoding=None, body=Body(body), now=i
                )
                if engine.wal_path.exists():
                    largest = max(largest, engine.wal_path.stat().st_size)
            stop = True
            await asyncio.gather(*readers)
            record = await engine.read_record(store.pk, "k49", now=2)
            assert record is not None
            assert record.body == body
        finally:
            await engine.close()
        return largest

    largest = asyncio.run(run())
    assert largest < 10 << 20, f"the WAL reached {largest / (1 << 20):.1f} MiB"
