"""The embedded engine's writer: groups run on the event loop, kept there a while when another writer has the
file and handed to its thread when it stays busy, queued on the writer lock across connections and processes,
and one job's failure undoing that job alone."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from satchel.storage.sqlite.writer import Writer


def connector(path: Path, made: list[str] | None = None) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        if made is not None:
            made.append("conn")
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    return connect


def insert(value: int, threads: list[int] | None = None) -> Callable[[sqlite3.Connection], int]:
    """A job that inserts its value (noting in `threads` the thread it ran on)."""

    def job(conn: sqlite3.Connection) -> int:
        if threads is not None:
            threads.append(threading.get_ident())
        conn.execute("INSERT INTO t (x) VALUES (?)", (value,))
        return value

    return job


def values(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [x for (x,) in conn.execute("SELECT x FROM t ORDER BY x")]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x INTEGER UNIQUE)")
    return path


def test_a_failing_job_is_undone_alone_and_its_group_commits(db: Path) -> None:
    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (x) VALUES (100)")
        raise ValueError("refused")

    async def run() -> list[object]:
        writer = Writer(connector(db), db.with_suffix(".lock"), on_loop=True)
        writer.start()
        try:
            # Queued in one turn of the loop: one group, one transaction.
            jobs = [insert(1), insert(2), half_then_fail, insert(3), insert(1)]
            return await asyncio.gather(*(writer.run(j) for j in jobs), return_exceptions=True)
        finally:
            writer.stop()

    results = asyncio.run(run())
    assert results[:2] == [1, 2]
    assert results[3] == 3
    assert isinstance(results[2], ValueError)
    assert isinstance(results[4], sqlite3.IntegrityError)  # 1 is there already
    assert values(db) == [1, 2, 3]  # not 100: the failed job's own insert is undone


def test_a_busy_file_sends_the_group_to_the_thread_while_the_loop_goes_on(db: Path) -> None:
    """Another program holds SQLite's write lock: the write waits off the loop, and lands once it is free."""

    async def run() -> tuple[int, int]:
        writer = Writer(connector(db), db.with_suffix(".lock"), on_loop=True)
        writer.start()
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        ticks = 0
        try:
            write = asyncio.create_task(writer.run(insert(7)))
            for _ in range(50):  # the loop turns while the write waits
                await asyncio.sleep(0.002)
                ticks += 1
            assert not write.done()
            holder.execute("COMMIT")
            return ticks, await asyncio.wait_for(write, 10)
        finally:
            holder.close()
            writer.stop()

    ticks, result = asyncio.run(run())
    assert ticks == 50
    assert result == 7
    assert values(db) == [7]


def test_writers_queue_on_the_writer_lock(db: Path) -> None:
    """A write waits while another holder (another worker, a checkpoint) has the writer lock, though SQLite's
    own lock is free, and goes through as soon as it is let go."""
    lock_path = db.with_suffix(".lock")

    async def run() -> int:
        writer = Writer(connector(db), lock_path, on_loop=True)
        writer.start()
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            write = asyncio.create_task(writer.run(insert(9)))
            await asyncio.sleep(0.2)
            assert not write.done()
            assert values(db) == []
            fcntl.flock(fd, fcntl.LOCK_UN)
            return await asyncio.wait_for(write, 10)
        finally:
            os.close(fd)
            writer.stop()

    assert asyncio.run(run()) == 9
    assert values(db) == [9]


@pytest.mark.parametrize("loop_wait", [60.0, 0.0])
def test_a_group_that_finds_the_writer_lock_taken_waits_on_the_loop_until_loop_wait(
    db: Path, loop_wait: float
) -> None:
    """Another worker holds the writer lock: the loop keeps its writes and runs them itself once the lock is
    free (writes that came meanwhile join them), unless they have waited loop_wait: then the thread does."""
    lock_path = db.with_suffix(".lock")
    threads: list[int] = []

    async def run() -> list[int]:
        writer = Writer(connector(db), lock_path, on_loop=True, loop_wait=loop_wait)
        writer.start()
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            first = asyncio.create_task(writer.run(insert(1, threads)))
            await asyncio.sleep(0.05)
            second = asyncio.create_task(writer.run(insert(2, threads)))
            await asyncio.sleep(0.05)
            assert not first.done()
            assert not second.done()
            assert values(db) == []
            fcntl.flock(fd, fcntl.LOCK_UN)
            return list(await asyncio.wait_for(asyncio.gather(first, second), 10))
        finally:
            os.close(fd)
            writer.stop()

    assert asyncio.run(run()) == [1, 2]
    assert values(db) == [1, 2]
    loop_thread = threading.get_ident()  # asyncio.run ran the loop on this thread
    if loop_wait:
        assert threads == [loop_thread, loop_thread]
    else:
        assert loop_thread not in threads


def test_two_writers_on_one_file_lose_nothing(db: Path) -> None:
    """Two writers on one file, as two worker processes have: every write from either is committed."""
    lock_path = db.with_suffix(".lock")

    async def run() -> None:
        a = Writer(connector(db), lock_path, on_loop=True)
        b = Writer(connector(db), lock_path, on_loop=True)
        a.start()
        b.start()
        try:
            await asyncio.gather(*((a if i % 2 else b).run(insert(i)) for i in range(2000)))
        finally:
            a.stop()
            b.stop()

    asyncio.run(run())
    assert values(db) == list(range(2000))


def test_a_loop_connection_that_cannot_open_hands_its_writes_to_the_thread(db: Path) -> None:
    made: list[str] = []
    good = connector(db, made)

    def connect() -> sqlite3.Connection:
        if not made:
            made.append("failed")
            raise sqlite3.OperationalError("unable to open database file")
        return good()

    async def run() -> int:
        writer = Writer(connect, db.with_suffix(".lock"), on_loop=True)
        writer.start()
        try:
            return await asyncio.wait_for(writer.run(insert(5)), 10)
        finally:
            writer.stop()

    assert asyncio.run(run()) == 5
    assert values(db) == [5]
    assert made[0] == "failed"
    assert len(made) >= 2


def test_after_commit_calls_come_once_committed_even_for_a_cancelled_waiter(db: Path) -> None:
    """A job's `after` runs once its commit is done, before the waiter hears of it, even when the waiter was
    cancelled meanwhile; a job that failed gets no call."""

    async def run() -> None:
        writer = Writer(connector(db), db.with_name("w.lock"), on_loop=True)
        writer.start()
        calls: list[tuple[int, list[int]]] = []

        def after(value: int) -> Callable[[], None]:
            return lambda: calls.append((value, values(db)))

        try:
            assert await writer.run(insert(1), after(1)) == 1
            assert calls == [(1, [1])]  # the row was committed when the call came
            waiter = asyncio.ensure_future(writer.run(insert(2), after(2)))
            await asyncio.sleep(0)  # queued for the end of this turn
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            for _ in range(100):
                if len(calls) == 2:
                    break
                await asyncio.sleep(0.01)
            assert calls[1] == (2, [1, 2])
            with pytest.raises(sqlite3.IntegrityError):
                await writer.run(insert(1), after(3))  # a duplicate: the job fails, no call
            assert [value for value, _ in calls] == [1, 2]
        finally:
            writer.stop()

    asyncio.run(run())
