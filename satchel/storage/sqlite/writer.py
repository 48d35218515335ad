"""Writes to a SQLite file, committed in groups: on the event loop when it can, else on a thread.

Concurrent writers to one SQLite file contend for its lock; one writer that runs every write avoids that, and
batching the jobs that queued up meanwhile into one transaction turns many small commits into one.

Where a commit needs no fsync (the default durability), a group runs on the event loop that queued it, at the
end of the loop's current turn: a commit then costs tens of microseconds, less than handing the group to a
thread and back (a queue, a wake-up through the loop's self-pipe, and a GIL hand-off at every statement, which
under load waits for the loop's switch interval). The loop never waits for the file's lock, though: its
connection has no busy timeout. A group that finds the file's writer lock taken (by another worker, a
checkpoint emptying the WAL, or the thread) stays on the loop and tries again a little later, gathering the
writes that come meanwhile, since SQL run on the thread holds the lock about twice as long per write (the GIL
hand-offs); only a group that has waited LOOP_WAIT goes to the thread, which waits for the lock in the kernel.
Commits that fsync always go to the thread.

Every writer of the file, in this process or another (a second worker, a management command), takes the
file's writer lock (an flock on a file beside it) before SQLite's own: a waiter then sleeps in the kernel and
wakes when the lock is let go, instead of polling SQLite's lock with sleeps of up to 100 ms, which under load
were the long stalls of a second worker's writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from satchel.logs import Occasional

T = TypeVar("T")
log = logging.getLogger(__name__)
# A full disk fails every write until room is made: said once a minute, not once a batch.
_full = Occasional(log, 60.0)

# The job, its future, the loop that waits on it, and what to call once it has committed.
Job = tuple[
    Callable[[sqlite3.Connection], Any],
    asyncio.Future[Any],
    asyncio.AbstractEventLoop,
    Callable[[], None] | None,
]
Outcome = tuple[Any, BaseException | None]
MAX_BATCH = 512
MAX_LOOP_BATCH = 128  # a group run on the loop holds up its other requests for its length
# A group that finds the lock taken tries again after RETRY; past LOOP_WAIT it goes to the thread. With two
# workers on B2's PUT load this put every write on a loop (55% went to the thread before) and cut the time
# the lock is held from 59% to 35-41% of the run, for 10% more PUTs.
RETRY = 0.001
LOOP_WAIT = 0.005
BUSY: list[Outcome] = []  # a group's "outcomes" when the writer lock was taken: try again


def _settle(batch: list[Job], outcomes: list[Outcome]) -> None:
    for (_, fut, _, _), (result, error) in zip(batch, outcomes, strict=True):
        if fut.done():
            continue
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)


def _tell(batch: list[Job], outcomes: list[Outcome]) -> None:
    """Hand each job's outcome to its event loop from the thread: one wake-up per loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, tuple[list[Job], list[Outcome]]] = {}
    for job, outcome in zip(batch, outcomes, strict=True):
        jobs, results = by_loop.setdefault(job[2], ([], []))
        jobs.append(job)
        results.append(outcome)
    for loop, (jobs, results) in by_loop.items():
        loop.call_soon_threadsafe(_settle, jobs, results)


def _run_jobs(conn: sqlite3.Connection, batch: list[Job], on_commit: Callable[[], None]) -> list[Outcome]:
    """Run a batch inside the open transaction and commit it; each job's own failure undoes that job alone.
    `on_commit` is called right after the commit, before the jobs' own after-commit calls.

    Jobs rarely fail, so the batch first runs under one savepoint rather than one per job (two statements
    fewer per job); if a job fails, that pass is undone and the batch runs again with a savepoint each. A job
    only touches the database, so running it twice is safe: only the committed run counts.
    """
    conn.execute("SAVEPOINT batch")
    try:
        outcomes: list[Outcome] = [(job(conn), None) for job, _, _, _ in batch]
    except Exception:
        conn.execute("ROLLBACK TO batch")
        outcomes = []
        for job, _, _, _ in batch:
            conn.execute("SAVEPOINT job")
            try:
                outcomes.append((job(conn), None))
                conn.execute("RELEASE job")
            except Exception as exc:  # the job's own failure: undo it alone
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((None, exc))
    conn.execute("COMMIT")
    on_commit()
    _committed(batch, outcomes)
    return outcomes


def _committed(batch: list[Job], outcomes: list[Outcome]) -> None:
    """Each committed job's after-commit call, before any waiter hears that the job is done."""
    for (_, _, _, after), (_, error) in zip(batch, outcomes, strict=True):
        if error is None:
            call_after(after)


def disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return False


def call_after(after: Callable[[], None] | None) -> None:
    """A job's after-commit call, if it has one."""
    if after is not None:
        try:
            after()
        except Exception:  # the commit stands; a failed announcement must not turn it into an error
            log.exception("an after-commit call failed")


def _transact(conn: sqlite3.Connection, batch: list[Job], on_commit: Callable[[], None]) -> list[Outcome]:
    """A batch in one transaction that has begun; a failure of the transaction itself fails every job."""
    try:
        return _run_jobs(conn, batch, on_commit)
    except Exception as exc:  # disk full, I/O error: nothing committed
        if disk_full(exc):
            _full.log(logging.WARNING, "writes fail while the disk is full: %s", exc)
        else:
            log.warning("write transaction failed: %s", exc)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return [(None, exc)] * len(batch)


class WriterLock:
    """The file's writer lock as one holder sees it: each holder opens the lock file itself, since an flock
    belongs to an open file, and two holders in one process must exclude each other too."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def take(self, *, wait: bool) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.take(wait=True)
        try:
            yield
        finally:
            self.release()

    def close(self) -> None:
        os.close(self._fd)


class Writer:
    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        lock_path: Path,
        *,
        on_loop: bool,
        loop_wait: float = LOOP_WAIT,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_commit`: called on whichever thread committed, right after each commit, before anyone waiting
        hears of it."""
        self._connect = connect
        self._on_commit = on_commit
        self._lock_path = lock_path
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="satchel-sqlite-writer", daemon=True)
        self._started = False
        self._on_loop = on_loop
        self._pending: dict[asyncio.AbstractEventLoop, list[Job]] = {}
        self._loop_wait = loop_wait
        # The loop-side connection, used by one loop at a time (tests and tools may run several loops).
        self._loop_conn: sqlite3.Connection | None = None
        self._loop_lock = threading.Lock()
        self._loop_file_lock: WriterLock | None = None  # opened on start: the data dir exists by then

    def start(self) -> None:
        self._loop_file_lock = WriterLock(self._lock_path)
        self._thread.start()
        self._started = True

    def stop(self) -> None:
        """Finish every queued job, then end the thread."""
        for loop, batch in list(self._pending.items()):
            # Groups a stopping loop never ran (its turn did not come): the thread takes them.
            del self._pending[loop]
            for job in batch:
                self._queue.put(job)
        if self._started:
            self._queue.put(None)
            self._thread.join()
            self._started = False
        with self._loop_lock:
            if self._loop_conn is not None:
                self._loop_conn.close()
                self._loop_conn = None
            if self._loop_file_lock is not None:
                self._loop_file_lock.close()
                self._loop_file_lock = None

    async def run(
        self,
        job: Callable[[sqlite3.Connection], T],
        after: Callable[[], None] | None = None,
        *,
        off_loop: bool = False,
    ) -> T:
        """Run job(connection) inside a write transaction; returns once it is committed. `after` is called
        right after the commit, on whichever thread ran it, even if the caller was cancelled meanwhile.
        `off_loop`: a long job (a large batch), run on the thread so that the loop goes on answering."""
        # A caller cancelled meanwhile (its client went away) cancels only its wait: the job stays queued and
        # commits all the same, since a batch runs every job it holds whatever became of their futures.
        return await self.submit(job, after, off_loop=off_loop)

    def submit(
        self,
        job: Callable[[sqlite3.Connection], T],
        after: Callable[[], None] | None = None,
        *,
        off_loop: bool = False,
    ) -> asyncio.Future[T]:
        """The job queued, as run() does; its future is resolved once it has committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        if self._on_loop and not off_loop:
            pending = self._pending.get(loop)
            if pending is None:
                pending = self._pending[loop] = []
                loop.call_soon(self._flush, loop)
            pending.append((job, fut, loop, after))
        else:
            self._queue.put((job, fut, loop, after))
        return fut

    # --- on the loop

    def _flush(self, loop: asyncio.AbstractEventLoop, busy_since: float | None = None) -> None:
        """Run the loop's group; `busy_since`: when it first found the writer lock taken, on a retry."""
        batch = self._pending.pop(loop, [])
        for start in range(0, len(batch), MAX_LOOP_BATCH):
            part = batch[start : start + MAX_LOOP_BATCH]
            outcomes = self._try_on_loop(part)
            if outcomes is BUSY:
                now = loop.time()
                since = now if busy_since is None else busy_since
                if now - since < self._loop_wait:
                    # Kept ahead of the writes that come meanwhile (run() sees the list and adds to it).
                    self._pending[loop] = batch[start:]
                    loop.call_later(RETRY, self._flush, loop, since)
                    return
                outcomes = None
            if outcomes is None:
                for job in part:
                    self._queue.put(job)
            else:
                _settle(part, outcomes)

    def _try_on_loop(self, batch: list[Job]) -> list[Outcome] | None:
        """The batch's outcomes; BUSY when the file's writer lock is taken; None when the thread should take
        the batch (the loop-side connection is in use by another loop, failed, or SQLite's lock is taken by a
        program that does not use the writer lock)."""
        if not self._loop_lock.acquire(blocking=False):
            return None
        file_lock = self._loop_file_lock
        if file_lock is None:
            self._loop_lock.release()
            return None
        if not file_lock.take(wait=False):
            self._loop_lock.release()
            return BUSY
        try:
            if self._loop_conn is None:
                self._loop_conn = self._connect()
                self._loop_conn.execute("PRAGMA busy_timeout=0")
            try:
                self._loop_conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                # Taken by a program that does not use the writer lock (a backup, the sqlite3 shell).
                if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    return None
                raise
            return _transact(self._loop_conn, batch, self._on_commit)
        except Exception:
            # The connection itself failed (opening it, or BEGIN on a failing disk): the thread retries the
            # batch on its own connection, and reports the error if it fails there too.
            log.exception("the loop's write connection failed; handing the writes to the thread")
            if self._loop_conn is not None:
                with contextlib.suppress(Exception):
                    self._loop_conn.close()
            self._loop_conn = None
            return None
        finally:
            file_lock.release()
            self._loop_lock.release()

    # --- on the thread

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        file_lock = WriterLock(self._lock_path)
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                try:
                    conn = conn or self._connect()
                    with file_lock.held():
                        conn.execute("BEGIN IMMEDIATE")
                        outcomes = _transact(conn, batch, self._on_commit)
                except Exception as exc:
                    # The connection itself failed (opening it, BEGIN, or a ROLLBACK on a failing disk): fail
                    # this batch and start the next on a fresh connection, rather than end the thread and
                    # leave every later write waiting forever.
                    log.exception("the writer's connection failed; reconnecting")
                    outcomes = [(None, exc)] * len(batch)
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.close()
                    conn = None
                _tell(batch, outcomes)
                if stop:
                    return
        finally:
            file_lock.close()
            if conn is not None:
                conn.close()
