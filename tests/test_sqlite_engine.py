"""The embedded engine's own machinery, in process: its writer thread, space reserve and WAL bound."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from satchel.errors import Unavailable
from satchel.settings import Settings
from satchel.storage import GeneralAccess, NewStore
from satchel.storage.blobs.files import FileBlobs
from satchel.storage.factory import build_storage
from satchel.storage.sqlite import db as db_module
from satchel.storage.sqlite import engine as engine_module
from satchel.storage.sqlite import snapshots
from satchel.storage.sqlite.engine import SqliteEngine
from satchel.storage.sqlite.reserve import Reserve
from satchel.storage.sqlite.writer import Writer, WriterLock
from tests.harness.engine import Body, owned_store


class FailingDisk(sqlite3.Connection):
    """A connection whose COMMIT and ROLLBACK fail, as on a disk giving I/O errors."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql in ("COMMIT", "ROLLBACK"):
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)


def test_the_writer_survives_a_connection_that_cannot_roll_back(tmp_path: Path) -> None:
    connections: list[sqlite3.Connection] = []

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
        writer = Writer(connect, tmp_path / "writer-lock", on_loop=False)
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


def test_the_reserve_is_held_only_with_room_to_spare_and_given_up_at_once(tmp_path: Path) -> None:
    reserve = Reserve(tmp_path / "reserve", 1 << 20)
    assert reserve.restore()
    assert reserve.held() == 1 << 20
    assert not reserve.short()
    assert reserve.release()
    assert reserve.held() == 0
    assert not reserve.release()
    # Short until it is held again: the file stays, emptied, for every process of the server to see.
    assert reserve.short()
    assert reserve.path.exists()
    assert Reserve(reserve.path, 1 << 20).short()
    assert reserve.restore()
    assert not Reserve(reserve.path, 1 << 20).short()
    assert reserve.release(4096)
    assert reserve.held() == (1 << 20) - 4096
    assert Reserve(reserve.path, 1 << 20).short()
    # Never held (a filesystem without preallocation keeps no file): no write is held back for it.
    assert not Reserve(tmp_path / "none", 1 << 20).short()
    st = os.statvfs(tmp_path)
    huge = Reserve(tmp_path / "huge", st.f_bavail * st.f_frsize)  # twice that is never free
    assert not huge.restore()
    assert huge.held() == 0


def test_the_wal_stays_bounded_under_sustained_writes_and_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers and readers never pause, yet the checkpoints keep the WAL near its limit."""
    monkeypatch.setattr(db_module, "WAL_LIMIT_BYTES", 1 << 20)
    monkeypatch.setattr(engine_module, "CHECKPOINT_SECONDS", 0.05)

    async def run() -> int:
        blobs = FileBlobs(tmp_path / "blobs", fsync=False)
        engine = SqliteEngine(tmp_path, blobs, inline_max=1 << 17, max_record_bytes=1 << 30, reserve_bytes=0)
        await engine.open()
        largest = 0
        try:
            store = await owned_store(engine, "wal")
            body = os.urandom(64 * 1024)  # inline: the bodies themselves go through the WAL
            stop = False

            async def reader() -> None:
                while not stop:
                    await engine.records.read(store.pk, "k7")
                    await asyncio.sleep(0)

            readers = [asyncio.create_task(reader()) for _ in range(4)]
            for i in range(2400):  # 150 MiB in all
                await engine.records.write(
                    store.pk, f"k{i % 50}", content_type="a", content_encoding=None, body=Body(body), now=i
                )
                if engine.db.wal_path.exists():
                    largest = max(largest, engine.db.wal_path.stat().st_size)
            stop = True
            await asyncio.gather(*readers)
            record = await engine.records.read(store.pk, "k49")
            assert record is not None
            assert record.inline == body
        finally:
            await engine.close()
        return largest

    largest = asyncio.run(run())
    # Bounded by what the writer adds between two checkpoints (it writes flat out here), far below the 150 MiB
    # written: a WAL that never starts over holds all of it.
    assert largest < 20 << 20, f"the WAL reached {largest / (1 << 20):.1f} MiB"


def test_data_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """The data dir is 0700 and every file in it 0600, even under a umask that lets everyone read."""
    data_dir = tmp_path / "data"
    old = os.umask(0)
    try:

        async def run() -> None:
            storage = build_storage(Settings(data_dir=data_dir, inline_max_bytes=10), housekeeping=False)
            await storage.open()
            try:
                store = await owned_store(storage)
                await storage.records.write(
                    store.pk, "k", content_type="a", content_encoding=None, body=Body(b"x" * 100), now=1
                )
                await storage.feed.publish()
            finally:
                await storage.close()

        asyncio.run(run())
    finally:
        os.umask(old)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.parent.parent.name == "blobs" for p in files)  # a blob file is among them
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files if p.stat().st_mode & 0o077} == {}


def test_an_older_readable_database_is_made_private(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "satchel.db").close()
    (tmp_path / "satchel.db").chmod(0o644)
    tmp_path.chmod(0o755)

    async def run() -> None:
        storage = build_storage(Settings(data_dir=tmp_path), housekeeping=False)
        await storage.open()
        await storage.close()

    asyncio.run(run())
    assert stat.S_IMODE((tmp_path / "satchel.db").stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700


def test_closing_under_checkpoint_load_waits_for_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing while a checkpoint thread is inside SQLite used to close its connection under it (a crash)."""
    monkeypatch.setattr(engine_module, "CHECKPOINT_SECONDS", 0.0)

    async def cycle(i: int) -> None:
        blobs = FileBlobs(tmp_path / "blobs", fsync=False)
        engine = SqliteEngine(tmp_path, blobs, inline_max=1 << 17, max_record_bytes=1 << 30, reserve_bytes=0)
        await engine.open()
        if i == 0:
            await engine.users.create("u", "admin", 0, default_general_access=GeneralAccess.RESTRICTED)
            await engine.stores.create(NewStore("s", "u", "n", GeneralAccess.RESTRICTED, "secret", None, 0))
        store = await engine.stores.by_id("s")
        assert store is not None
        for j in range(20):
            await engine.records.write(
                store.pk, f"k{j}", content_type="a", content_encoding=None, body=Body(os.urandom(8192)), now=j
            )
        checkpoints = [asyncio.create_task(engine.db.checkpoint()) for _ in range(4)]
        await asyncio.sleep(0)
        await engine.close()
        await asyncio.gather(*checkpoints, return_exceptions=True)

    for i in range(30):
        asyncio.run(cycle(i))


def _note(conn: sqlite3.Connection, value: int) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS notes (value INTEGER)")
    conn.execute("INSERT INTO notes VALUES (?)", (value,))


def test_no_checkpoint_starts_on_a_wal_copied_whole_with_nothing_committed_since(tmp_path: Path) -> None:
    """The SQLite here predates the fix of the WAL-reset bug, whose trigger is a checkpoint begun on a WAL
    already copied whole while a commit starts it over: the tick after every write on a quiet server."""

    async def run() -> None:
        db = db_module.Database(tmp_path, fsync=False, reserve_bytes=0)
        await db.open()
        try:
            await db.write(_note, 1)
            await db.checkpoint()  # copies the whole WAL
            assert db._checkpointer is not None
            ran: list[str] = []
            db._checkpointer.set_trace_callback(ran.append)

            await db.checkpoint()
            assert ran == []  # nothing committed since: no checkpoint started

            await db.write(_note, 2)
            await db.checkpoint()
            assert ran == ["PRAGMA wal_checkpoint(PASSIVE)"]

            # A reader in its snapshot keeps the last commit from being copied: the next tick tries again
            # though nothing was committed meanwhile, and once the reader is gone the copy is whole.
            reader = db.connect()
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM notes").fetchone()
            await db.write(_note, 3)
            ran.clear()
            await db.checkpoint()
            await db.checkpoint()
            assert ran == ["PRAGMA wal_checkpoint(PASSIVE)"] * 2
            reader.execute("COMMIT")
            ran.clear()
            await db.checkpoint()
            await db.checkpoint()
            assert ran == ["PRAGMA wal_checkpoint(PASSIVE)"]
            assert db.one("SELECT count(*) FROM notes")[0] == 3  # type: ignore[index]

            # Another process on the file (another Database: its own locks, the same shared stamps) knows the
            # WAL was copied whole, and never checkpoints while one of the others does.
            other = db_module.Database(tmp_path, fsync=False, reserve_bytes=0)
            await other.open()
            try:
                await other.checkpoint()
                assert other._checkpointer is None  # no checkpoint started
                await db.write(_note, 4)
                turn = WriterLock(db.checkpoint_lock_path)
                with turn.held():  # a checkpoint of the first one's is running
                    await other.checkpoint()
                    assert other._checkpointer is None
                turn.close()
                await other.checkpoint()
                assert other._checkpointer is not None
                ran.clear()
                await db.checkpoint()
                assert ran == []  # the other copied it whole
            finally:
                await other.close()
        finally:
            await db.close()

    asyncio.run(run())


def test_closing_waits_for_work_inside_sqlite_beside_the_loop_and_lets_none_start_after(
    tmp_path: Path,
) -> None:
    """A checkpoint or count whose awaiting task went away runs on in its thread: close() closed its
    connection under it (a segfault, seen in CI), and a checkpoint starting after close() made a connection
    close() then closed mid-statement."""
    inside = threading.Event()
    release = threading.Event()

    async def run() -> None:
        db = db_module.Database(tmp_path, fsync=False, reserve_bytes=0)
        await db.open()

        def count_slowly() -> int:
            cursor = db.conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n"
            )
            first = int(cursor.fetchone()[0])  # a statement open on this thread's connection
            inside.set()
            release.wait(10)
            second = int(cursor.fetchone()[0])
            cursor.close()
            return first + second

        counting = asyncio.create_task(db.in_thread(count_slowly))
        await asyncio.to_thread(inside.wait, 10)
        closing = asyncio.create_task(db.close())
        await asyncio.sleep(0.3)
        assert not closing.done(), "close() did not wait for the statement running beside the loop"
        release.set()
        await closing
        assert await counting == 3
        assert db._connections == []

        await db.checkpoint()  # a tick after close: does nothing, makes no connection
        assert db._checkpointer is None
        assert db._connections == []
        with pytest.raises(Unavailable, match="shutting down"):
            await db.in_thread(lambda: db.one("SELECT 1"))

    asyncio.run(run())


async def _engine_with_a_store(data_dir: Path, *, first: bool) -> tuple[SqliteEngine, int]:
    engine = SqliteEngine(
        data_dir, FileBlobs(data_dir / "blobs", fsync=False), inline_max=1 << 17, max_record_bytes=1 << 30
    )
    await engine.open()
    if first:
        await engine.users.create("u", "admin", 0, default_general_access=GeneralAccess.RESTRICTED)
        await engine.stores.create(NewStore("s", "u", "n", GeneralAccess.RESTRICTED, "secret", None, 0))
    store = await engine.stores.by_id("s")
    assert store is not None
    return engine, store.pk


def _held(engine: SqliteEngine) -> bool:
    """Whether this thread's point reader holds a snapshot."""
    reader = getattr(engine.db._local, "reader", None)
    return reader is not None and reader.conn.in_transaction


def test_a_held_snapshot_never_hides_a_write_another_process_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two engines on one data dir, as two server processes: a read right after the other's write sees it,
    though the reader's snapshot would otherwise still be held."""
    monkeypatch.setattr(snapshots, "HELD_SECONDS", 60.0)

    async def run() -> None:
        writer, pk = await _engine_with_a_store(tmp_path, first=True)
        reader, _ = await _engine_with_a_store(tmp_path, first=False)
        try:
            for i in range(20):
                body = f"value {i}".encode()
                await writer.records.write(
                    pk, "k", content_type="a", content_encoding=None, body=Body(body), now=i
                )
                record = await reader.records.read(pk, "k")
                assert record is not None
                assert record.inline == body
                assert _held(reader)  # the read did hold its snapshot: it was renewed, not skipped
                head = await reader.records.head(pk, "k")
                assert head is not None
                assert head.size == len(body)
        finally:
            await reader.close()
            await writer.close()

    asyncio.run(run())


def test_a_held_snapshot_ends_by_itself_and_only_a_loop_holds_one(tmp_path: Path) -> None:
    async def run() -> SqliteEngine:
        engine, pk = await _engine_with_a_store(tmp_path, first=True)
        await engine.records.write(pk, "k", content_type="a", content_encoding=None, body=Body(b"x"), now=1)
        assert await engine.records.read(pk, "k") is not None
        assert _held(engine)
        await asyncio.sleep(snapshots.HELD_SECONDS * 5)
        assert not _held(engine)  # no more reads came, and it ended all the same
        return engine

    engine = asyncio.run(run())
    try:
        # Outside any event loop nothing could end a snapshot, so none is held.
        row = engine.db.point("SELECT key FROM records WHERE key = ?", ("k",))
        assert row is not None
        assert not _held(engine)
    finally:
        asyncio.run(engine.close())


def test_a_checkpoint_keeps_the_locks_this_process_holds_on_the_database_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's included.
    The checkpoint's fsync of the database file once opened and closed its own: the next process to close a
    connection then found itself the last one, and took the WAL away from under the server (whose reads all
    failed from then on as "database disk image is malformed", and whose writes no other process saw)."""
    monkeypatch.setattr(db_module, "WAL_LIMIT_BYTES", 64 * 1024)  # so one checkpoint takes the fsync path

    def another_process(sql: str) -> str:
        script = (
            "import sqlite3, sys; conn = sqlite3.connect(sys.argv[1]);"
            " print(conn.execute(sys.argv[2]).fetchall()); conn.close()"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "satchel.db"), sql],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    async def run() -> None:
        engine, pk = await _engine_with_a_store(tmp_path, first=True)
        try:
            for n in range(200):  # some 200 KiB of WAL
                await _put(engine, pk, f"k{n}", b"x" * 1024)
            await engine.db.checkpoint()
            assert another_process("SELECT count(*) FROM records") == "[(200,)]"
            assert engine.db.wal_path.exists()  # still this process's, though the other one closed
            await _put(engine, pk, "after", b"y")
            record = await engine.records.read(pk, "k7")
            assert record is not None
            assert record.inline == b"x" * 1024
            assert another_process("SELECT key FROM records WHERE key = 'after'") == "[('after',)]"
        finally:
            await engine.close()

    asyncio.run(run())


async def _put(engine: SqliteEngine, pk: int, key: str, body: bytes) -> None:
    await engine.records.write(pk, key, content_type="a", content_encoding=None, body=Body(body), now=1)


def _fill(conn: sqlite3.Connection, mib: int) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    conn.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(64 * 1024),) for _ in range(mib * 16)])


def _empty(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM filler")


def test_free_pages_go_back_to_the_disk_a_few_at_a_time(tmp_path: Path) -> None:
    """What deletes free in a database file is given back to the filesystem, a write of about 16 MiB at a
    time (the file stayed at its largest for good); below 16 MiB free, pages stay for the next writes."""

    async def main() -> None:
        db = db_module.Database(tmp_path, fsync=False, reserve_bytes=0)
        await db.open()
        try:
            assert db.one("PRAGMA auto_vacuum")[0] == db_module.INCREMENTAL  # type: ignore[index]
            await db.write(_fill, 40)
            await db.checkpoint()
            full = db.path.stat().st_size
            assert full > 40 * 1024 * 1024
            await db.write(_empty)
            given = [await db.reclaim() for _ in range(12)]
            assert given[0] == db_module.RECLAIM_PAGES
            assert given[-1] == 0  # what is left free is under the threshold
            await db.checkpoint()
            left = db.path.stat().st_size
            assert left < full - 20 * 1024 * 1024, (full, left)
            free = db.one("PRAGMA freelist_count")[0] * db.one("PRAGMA page_size")[0]  # type: ignore[index]
            assert 0 < free < db_module.RECLAIM_MIN_BYTES
        finally:
            await db.close()

    asyncio.run(main())


def test_a_file_made_without_auto_vacuum_keeps_its_pages(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "satchel.db")  # made by an older Satchel: no auto_vacuum
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()

    async def main() -> None:
        db = db_module.Database(tmp_path, fsync=False, reserve_bytes=0)
        await db.open()
        try:
            await db.write(_fill, 20)
            await db.write(_empty)
            assert await db.reclaim() == 0
        finally:
            await db.close()

    asyncio.run(main())
