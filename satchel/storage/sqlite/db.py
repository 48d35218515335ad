"""The embedded engine's database: one SQLite file (WAL), its writer thread, checkpoints and disk reserve.

Reads run on the calling thread over a per-thread connection (a point read costs microseconds, less than a
thread hop), each statement in its own implicit transaction; every write goes through the one writer thread.
The hot point reads (`point`) keep a snapshot between statements instead, for at most HELD_SECONDS and only
while nothing was committed (snapshots.py).

Checkpoints run beside the writer: PASSIVE ones often, and once the WAL holds more than WAL_LIMIT_BYTES, a
RESTART right after the PASSIVE one, which waits for readers to leave their snapshots and makes the next
writer start the WAL over from its beginning. A checkpoint that must wait for nobody cannot bound the WAL,
since the writer commits while it copies; so no reader holds a snapshot for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from satchel.errors import StorageFull, Unavailable
from satchel.storage.sqlite.handoff import Handoff
from satchel.storage.sqlite.held_file import HeldFile
from satchel.storage.sqlite.link import ANSWER_SECONDS, NotSent
from satchel.storage.sqlite.migrations import migrate
from satchel.storage.sqlite.off_loop import OffLoop, Shut
from satchel.storage.sqlite.reserve import Reserve
from satchel.storage.sqlite.snapshots import CommitStamp, HeldReader
from satchel.storage.sqlite.writer import Writer, WriterLock, disk_full

T = TypeVar("T")
RESERVE_BYTES = 16 * 1024 * 1024
INCREMENTAL = 2  # PRAGMA auto_vacuum's value for incremental
RECLAIM_MIN_BYTES = 16 * 1024 * 1024  # free pages below this stay for the next writes
RECLAIM_PAGES = 4096  # given back in one write: about 16 MiB, 14 ms of the writer (4 MiB took 3.5 ms)
RECLAIM_SECONDS = 5.0  # how often: up to 190 MiB a minute
WAL_LIMIT_BYTES = 32 * 1024 * 1024  # past this, the next checkpoint starts the WAL over
RESTART_WAIT_SECONDS = 1.0  # longest a RESTART holds writes back waiting for readers
RESTART_POLL_SECONDS = 0.0005
HANDOFF_ATTEMPTS = 3  # leads tried for one write whose job never left this process
TIDYING_BYTES = 256 * 1024  # of the reserve, for forgetting removed files on a full disk (a few WAL pages)
STORAGE_FULL = "The server's disk is full; the change was not stored."
HELD_FOR_DELETES = (
    "The server's disk is full: until deletes have made room again ({mib} MiB free), only they are taken."
    " The change was not stored."
)


def io_error(exc: BaseException) -> bool:
    return (
        isinstance(exc, sqlite3.Error)
        and (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_IOERR
    )


def rows_within(cursor: sqlite3.Cursor, max_bytes: int) -> tuple[list[sqlite3.Row], bool]:
    """The cursor's rows until the `body` columns before the next one reach max_bytes (always the first;
    the rest is never read), and whether that cut them short."""
    rows: list[sqlite3.Row] = []
    size = 0
    try:
        for row in cursor:
            if size >= max_bytes:
                return rows, True
            rows.append(row)
            size += len(row["body"] or b"")
    finally:
        cursor.close()
    return rows, False


def private_dir(path: Path) -> None:
    """A folder only its owner may enter, whatever the umask: data never readable by other local users."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        path.chmod(0o700)


def _private_files(database: Path, *companions: Path) -> None:
    """The database file made 0600 before SQLite first opens it (its WAL and shared-memory files take the
    database's mode), and files an older Satchel left readable made private."""
    if not database.exists():
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    for path in (database, *companions):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)


def _is_open(conn: sqlite3.Connection) -> bool:
    try:
        conn.total_changes  # noqa: B018 - raises once the connection is closed
    except sqlite3.ProgrammingError:
        return False
    return True


def _bound(job: Callable[..., T], args: tuple[Any, ...]) -> Callable[[sqlite3.Connection], T]:
    """job(connection, *args) as the writer calls it: job(connection)."""
    return (lambda conn: job(conn, *args)) if args else job


class Database:
    def __init__(
        self,
        data_dir: Path,
        *,
        fsync: bool,
        reserve_bytes: int = RESERVE_BYTES,
        handoff: bool = False,
        answer_seconds: float = ANSWER_SECONDS,
        on_record_change: Callable[[int, str], None] | None = None,
    ) -> None:
        """`handoff`: several server processes share the file, and one writes for all; `answer_seconds`: how
        long a write handed to it waits for its answer before it fails in doubt (link.py).
        `on_record_change`: moves a record's stamp (the change feed's), once a job that changed the record
        has committed (see write()'s `record`)."""
        self.data_dir = data_dir
        self.path = data_dir / "satchel.db"
        self.wal_path = data_dir / "satchel.db-wal"
        self.lock_path = data_dir / "satchel.db-writer"
        self.fsync = fsync
        self.reserve = Reserve(data_dir / "reserve", reserve_bytes)
        self.commits = CommitStamp(data_dir / "satchel.db-commits")
        self.writer = Writer(
            self._connect_writer, self.lock_path, on_loop=not fsync, on_commit=self.commits.move
        )
        # With several server processes on the file, one writes for all (handoff.py).
        self.handoff = (
            Handoff(
                data_dir, self._submit_here, self._run_for_another, fsync=fsync, answer_seconds=answer_seconds
            )
            if handoff
            else None
        )
        self._local = threading.local()
        # Every connection made, closed by close() whichever thread made it: the held file may only be closed
        # after them (held_file.py).
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self.file = HeldFile(self.path)
        self._checkpointer: sqlite3.Connection | None = None  # used by one housekeeping task at a time
        self._checkpointer_lock: WriterLock | None = None
        self._page_bytes = 4096  # the database's page size, read when the checkpointer connects
        self.checkpoint_lock_path = data_dir / "satchel.db-checkpoint"
        self._checkpoint_turn: WriterLock | None = None  # one process's checkpoint at a time on the file
        self._checkpointing = threading.Lock()  # one checkpoint at a time on the checkpointer connection
        self.off_loop = OffLoop()  # what runs on these connections beside the loop, which close() waits for
        self._on_record_change = on_record_change

    # --- connections

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row  # rows are read by column name
        with self._connections_lock:
            self._connections = [c for c in self._connections if _is_open(c)]
            self._connections.append(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA mmap_size=268435456")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
        # A WAL started over is cut back to this size, so a burst does not keep its disk space for good.
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        """The writer's connection: it never checkpoints, so no commit waits for a checkpoint's fsyncs."""
        conn = self.connect()
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection; each statement sees every commit made before it began."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.connect()
        return conn

    def one(self, sql: str, args: Any = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, args).fetchone()
        return row

    def point(self, sql: str, args: Any) -> tuple[Any, ...] | None:
        """One row in this thread's held snapshot (snapshots.py): the hot reads by key. A plain tuple in the
        order of the statement's columns: a sqlite3.Row's lookups by name cost a GET 1-2.7 us of its 20."""
        reader: HeldReader | None = getattr(self._local, "reader", None)
        if reader is None:
            conn = self.connect()
            conn.row_factory = None
            reader = self._local.reader = HeldReader(conn)
        return reader.one(sql, args, self.commits.read())

    def all(self, sql: str, args: Any = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, args).fetchall()

    # --- lifecycle

    async def open(self) -> None:
        self.off_loop.open()
        private_dir(self.data_dir)
        _private_files(self.path, self.wal_path, self.path.with_name(self.path.name + "-shm"))
        try:
            self._open_file()
        except (OSError, sqlite3.Error) as exc:
            # A full disk must not keep the server from starting: reads work, and deletes make room. (SQLite
            # says "disk I/O error" when it cannot make its shared-memory file on a full disk.)
            if not ((disk_full(exc) or io_error(exc)) and self.reserve.release()):
                raise
            self._open_file()
        self.reserve.restore()
        self.file.open()
        self.commits.open()
        self.writer.start()
        if self.handoff is not None:
            await self.handoff.start()

    def _open_file(self) -> None:
        schema = resources.files("satchel.storage.sqlite").joinpath("schema.sql").read_text()
        if not self.path.is_file() or self.path.stat().st_size == 0:
            # A new file: free pages can be given back to the disk a few at a time (reclaim()) if that is
            # chosen before the first page is written, which setting WAL mode does. A file made without it
            # keeps its size, and reuses its free pages.
            with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as first:
                first.execute("PRAGMA auto_vacuum=INCREMENTAL")
                first.execute("PRAGMA journal_mode=WAL")
        with contextlib.closing(self.connect()) as conn:
            conn.executescript(schema)
            migrate(conn)

    async def close(self) -> None:
        if self.handoff is not None:
            await self.handoff.stop()  # the jobs handed to this process run before its writer stops
        self.writer.stop()
        self.commits.close()
        # A thread cannot be cancelled: work still inside SQLite on one of these connections (a checkpoint, a
        # count whose request went away) is waited for, and none starts after.
        await asyncio.to_thread(self.off_loop.shut)
        self._close_checkpointer()
        # Every connection, whichever thread made it (a thread's reads, a count run beside the loop), and only
        # then the held file (held_file.py).
        with self._connections_lock:
            made, self._connections = self._connections, []
        for conn in made:
            conn.close()
        self._local = threading.local()  # no thread keeps a closed connection, should this open again
        self.file.close()

    # --- writing

    async def write(
        self,
        job: Callable[..., T],
        *args: Any,
        frees: bool = False,
        tidies: bool = False,
        grows: bool = False,
        after: Callable[[], None] | None = None,
        off_loop: bool = False,
        record: tuple[int, str] | None = None,
    ) -> T:
        """Run job(connection, *args) in a write transaction. The job is a module-level function, and its
        arguments and result are plain data: another process may run it (the one that writes for all).
        `frees`: it makes room (a delete), so a full disk gives up the reserve for it. `tidies`: it only
        forgets files already removed, so a full disk gives up a sliver of the reserve: the rest stays for the
        deletes users send, which the next uploads would otherwise leave no room for. `grows`: it brings data
        in (a record, items, requests, a log's lines), refused while the reserve is short, so that the room
        the reserve gave stays for deletes; what only keeps the server going (a token, a session, a count) is
        not.
        `after`: called here once the job has committed (see Writer.run); by default, with `record`, the move
        of the record's stamp. `off_loop`: a long job (a large batch) runs on the writer's thread, so the
        event loop that would otherwise run it goes on answering.
        `record`: the (store pk, key) of the record the job changes, as plain data: its stamp in the change
        feed moves once the job has committed, before anyone hears of it (`on_record_change`). A lead that
        runs the job for this process moves it itself, as well as this process on the answer: this process
        may be gone by then (killed after its write was answered in doubt, say), which left every process's
        cache serving the record from before the change for good."""
        if grows and self.reserve.short():
            # The room the reserve gave is kept for deletes, which the next uploads would otherwise take.
            raise StorageFull(HELD_FOR_DELETES.format(mib=2 * self.reserve.size >> 20))
        if after is None:
            after = self._announce(record)
        handoff = self.handoff
        for attempt in range(HANDOFF_ATTEMPTS):
            if handoff is None or handoff.leading:
                break
            link = handoff.link if handoff.link is not None and handoff.link.open else await handoff.elect()
            if link is None:
                break
            try:
                return await link.run(job, args, frees, tidies, off_loop, after, record)  # type: ignore[no-any-return]
            except NotSent:
                # The lead was gone before the job left this process (a link not yet seen closed): it did
                # not run, so the next lead takes it.
                if attempt + 1 == HANDOFF_ATTEMPTS:
                    raise
            except sqlite3.OperationalError as exc:
                # The lead ran it on a full disk (a job that frees room was already retried there, as here).
                if disk_full(exc):
                    raise StorageFull(STORAGE_FULL) from exc
                raise
        return await self._write_here(job, args, frees, tidies, after, off_loop)

    def _submit_here(
        self,
        job: Callable[..., T],
        args: tuple[Any, ...],
        off_loop: bool = False,
        record: tuple[int, str] | None = None,
    ) -> asyncio.Future[T]:
        """Another process's job queued on this process's writer: its future, resolved once committed, after
        the stamp of the record it changed has moved. Unlike write(), a full disk is not retried with the
        reserve given up."""
        return self.writer.submit(_bound(job, args), self._announce(record), off_loop=off_loop)

    def _run_for_another(  # noqa: PLR0917 - a handed-over job's fields, in their order
        self,
        job: Callable[..., T],
        args: tuple[Any, ...],
        frees: bool,
        tidies: bool,
        off_loop: bool,
        record: tuple[int, str] | None,
    ) -> Awaitable[T]:
        """Another process's job run here as write() runs this process's own (a full disk retried)."""
        return self._write_here(job, args, frees, tidies, self._announce(record), off_loop)

    def _announce(self, record: tuple[int, str] | None) -> Callable[[], None] | None:
        """The after-commit call that moves the stamp of the record a job changes (Writer.run's `after`)."""
        on_change = self._on_record_change
        if record is None or on_change is None:
            return None
        return functools.partial(on_change, *record)

    async def _write_here(  # noqa: PLR0917 - write()'s arguments, and the handoff's run of them
        self,
        job: Callable[..., T],
        args: tuple[Any, ...],
        frees: bool,
        tidies: bool,
        after: Callable[[], None] | None = None,
        off_loop: bool = False,
    ) -> T:
        bound = _bound(job, args)
        try:
            return await self.writer.run(bound, after, off_loop=off_loop)
        except sqlite3.OperationalError as exc:
            if not disk_full(exc):
                raise
            if not (frees or tidies):
                raise StorageFull(STORAGE_FULL) from exc
        # Another process may have released the reserve already; the room is there either way.
        await asyncio.to_thread(self.reserve.release, None if frees else TIDYING_BYTES)
        try:
            return await self.writer.run(bound, after, off_loop=off_loop)
        except sqlite3.OperationalError as exc:
            if disk_full(exc):
                raise StorageFull(STORAGE_FULL) from exc
            raise

    # --- housekeeping

    def _close_checkpointer(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        for lock in (self._checkpointer_lock, self._checkpoint_turn):
            if lock is not None:
                lock.close()
        self._checkpointer_lock = self._checkpoint_turn = None

    def _checkpoint(self) -> None:
        with self._checkpointing:
            # Every process ticks, one at a time on the file: a tick that finds another process's checkpoint
            # running leaves the copy to it rather than start one right after it (see _checkpoint_now).
            self._checkpoint_turn = self._checkpoint_turn or WriterLock(self.checkpoint_lock_path)
            if not self._checkpoint_turn.take(wait=False):
                return
            try:
                self._checkpoint_now()
            finally:
                self._checkpoint_turn.release()

    def _checkpoint_now(self) -> None:
        """Copy committed pages from the WAL into the database file, beside the writer rather than in it.

        PASSIVE waits for no one; whatever a reader still needs is copied on a later tick. It never catches
        up under steady writes, though, so the WAL would only grow: past the limit, a RESTART follows, which
        holds writes back while it copies what came in during the PASSIVE one (a few milliseconds' worth)
        and waits for the readers' statements, after which the next writer starts the WAL over. Under the
        mixed benchmark that holds writes back 5 to 16 ms about once a second; the TRUNCATE used before
        copied everything since the last tick with writes held back, 90 to 190 ms every few seconds.

        No checkpoint starts on a WAL already copied whole, by any process, with nothing committed since:
        SQLite before 3.51.3 (the WAL-reset bug) can corrupt the database when one does and a commit starts
        the WAL over meanwhile, which is what the tick after each write on a quiet server would be.
        """
        stamp = self.commits.read()
        if stamp and stamp == self.commits.copied_under():
            return
        if self._checkpointer is None:
            self._checkpointer = self.connect()
            # No busy handler: a RESTART's tries are made by _restart().
            self._checkpointer.execute("PRAGMA busy_timeout=0")
            self._page_bytes = int(self._checkpointer.execute("PRAGMA page_size").fetchone()[0])
        try:
            _, frames, copied = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames * self._page_bytes > WAL_LIMIT_BYTES:
                # The pages the PASSIVE one copied, flushed to disk before writes are held back, so that the
                # RESTART's own sync of the database file is short.
                # Best effort: what fails here (a full or failing disk), the RESTART's own sync meets.
                with contextlib.suppress(OSError):
                    self.file.sync()
                # Writers queue on the writer lock meanwhile, rather than poll SQLite's lock.
                self._checkpointer_lock = self._checkpointer_lock or WriterLock(self.lock_path)
                with self._checkpointer_lock.held():
                    frames, copied = self._restart(self._checkpointer)
            # Read after the copy: a commit it may have missed moves the stamp after this (the next tick
            # runs), or moved it before, and then its frames wait in the WAL, where reads find them.
            self.commits.mark_copied((self.commits.read() or 0) if copied == frames else 0)
        except sqlite3.OperationalError as exc:
            if not (disk_full(exc) or io_error(exc)):
                raise
            # On a full disk the pages stay in the WAL, where reads find them; a later tick copies them.

    @staticmethod
    def _restart(conn: sqlite3.Connection) -> tuple[int, int]:
        """A RESTART checkpoint, tried again every RESTART_POLL_SECONDS while readers are in their snapshots,
        for up to RESTART_WAIT_SECONDS (then it gives up until the next tick). Writes wait meanwhile, and
        SQLite's own busy handler sleeps 1, 2, 5, then 10 ms and more between tries: longer than a held
        snapshot lasts. Returns the WAL's frames and how many of them are copied."""
        deadline = time.monotonic() + RESTART_WAIT_SECONDS
        while True:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            if not busy or time.monotonic() >= deadline:
                return frames, copied
            time.sleep(RESTART_POLL_SECONDS)

    async def checkpoint(self) -> None:
        with contextlib.suppress(Unavailable):  # closing: SQLite checkpoints on the last connection's close
            await self.in_thread(self._checkpoint)

    async def in_thread(self, work: Callable[[], T]) -> T:
        """work() on a thread beside the loop, over that thread's own connection; close() waits for it."""
        try:
            return await asyncio.to_thread(self.off_loop.run, work)
        except Shut:
            raise Unavailable(
                "The server is shutting down; try again on another one or once it is back."
            ) from None

    async def reclaim(self) -> int:
        """Give up to RECLAIM_PAGES free pages back to the filesystem, when more than RECLAIM_MIN_BYTES are
        free: deleted stores and items otherwise leave the file at its largest for good. A short write (the
        pages move in the writer's transaction), so writes wait for it a few milliseconds. Returns the pages
        given back; 0 on a file made before auto_vacuum was set, where it cannot be done.

        Only the process that writes does it (the writing process, or the lead among the workers): every
        process ticking would give back as many times more, and read the free count on its serving loop."""
        if self.handoff is not None and not self.handoff.leading:
            return 0
        row = self.one("SELECT * FROM pragma_auto_vacuum, pragma_freelist_count, pragma_page_size")
        if row is None or row[0] != INCREMENTAL:
            return 0
        free, page_bytes = int(row[1]), int(row[2])
        if free * page_bytes < RECLAIM_MIN_BYTES:
            return 0
        with contextlib.suppress(StorageFull, Unavailable):  # a later tick tries again
            return await self.write(_give_back, min(free, RECLAIM_PAGES))
        return 0

    async def restore_reserve(self) -> None:
        await asyncio.to_thread(self.reserve.restore)


def _give_back(conn: sqlite3.Connection, pages: int) -> int:
    """Free pages given back to the filesystem (at the next checkpoint). Python's sqlite3 runs the pragma
    for one page a call, whatever its argument, so it is called once a page."""
    for _ in range(pages):
        conn.execute("PRAGMA incremental_vacuum(1)")
    return pages
