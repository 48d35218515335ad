"""The embedded engine: SQLite (WAL) for metadata and small bodies, a blob folder for large ones.

Reads run on the calling thread over a per-thread connection (a point read costs microseconds, less than a
thread hop), each statement in its own implicit transaction; every write goes through the one writer thread.

Readers hold no transaction between statements, and checkpoints run beside the writer: PASSIVE ones often,
and a TRUNCATE once the WAL passes WAL_LIMIT_BYTES. Held read transactions made point reads about a third
cheaper, but under a sustained mixed load some reader always held a snapshot, so the WAL could never restart
and grew past a gigabyte a minute; a checkpoint that must wait for nobody cannot bound it either, since the
writer commits while it copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from satchel.clock import now_ms
from satchel.errors import Conflict, NotFound, StorageFull
from satchel.storage.base import (
    GrantRow,
    KeyItem,
    NewStore,
    RecordHead,
    RecordRead,
    StoreRow,
    StoreStats,
    TokenRow,
    UploadBody,
    UserRow,
)
from satchel.storage.sqlite.blobs import BlobDir, Spooled
from satchel.storage.sqlite.generation import Generation
from satchel.storage.sqlite.migrations import migrate
from satchel.storage.sqlite.reserve import Reserve
from satchel.storage.sqlite.writer import Writer
from satchel.storage.stats_buffer import StatsBuffer

log = logging.getLogger(__name__)

STORE_COLUMNS = (
    "s.pk, s.id, s.user_id, u.username, s.name, s.title, s.created_at, s.modified_at, s.accessed_at,"
    " s.general_access, s.url_signing_secret_key, s.schema, s.act_id, s.act_run_id, u.default_general_access,"
    " s.read_count, s.write_count, s.delete_count, s.list_count, s.storage_bytes"
)
STORE_SELECT = f"SELECT {STORE_COLUMNS} FROM stores s JOIN users u ON u.id = s.user_id"  # noqa: S608
RECORD_SELECT = (
    "SELECT key, content_type, content_encoding, size, raw_size, modified_at, blob, body"
    " FROM records WHERE store_pk = ? AND key = ?"
)
USER_SELECT = "SELECT u.id, u.username, u.created_at, u.default_general_access FROM users u"
ORPHAN_AGE_SECONDS = 3600.0
NO_GRANT = ""  # a cached "no grant", told apart from "not cached"
CACHE_MAX = 10_000  # entries in each hot-path cache (tokens, stores, grants), so memory stays bounded
K = TypeVar("K")
V = TypeVar("V")
# Whether any record names a blob file: an index lookup (records_by_blob), once per file in the orphan scan.
BLOB_NAMED = "SELECT 1 FROM records WHERE blob = ? LIMIT 1"
RESERVE_BYTES = 16 * 1024 * 1024
# How often committed pages move from the WAL into the database file (the writer itself never does it).
CHECKPOINT_SECONDS = 0.5
WAL_LIMIT_BYTES = 64 * 1024 * 1024  # past this, the next checkpoint empties the WAL


def _remember(cache: dict[K, V], key: K, value: V) -> V:
    """Cache a value; a full cache starts over, which costs less on the hot path than LRU bookkeeping."""
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _store(row: Any) -> StoreRow:
    return StoreRow(
        *row[:15],
        stats=StoreStats(row[15], row[16], row[17], row[18], row[19]),  # type: ignore[misc]
    )


def _head(row: Any) -> RecordHead:
    return RecordHead(row[0], row[1], row[2], row[3], row[4], row[5])


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return False


def _io_error(exc: BaseException) -> bool:
    return (
        isinstance(exc, sqlite3.Error)
        and (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_IOERR
    )


class SqliteEngine:
    def __init__(
        self,
        data_dir: Path,
        *,
        fsync: bool = False,
        inline_max: int,
        max_record_bytes: int,
        blob_grace_ms: int = 60_000,
        reserve_bytes: int = RESERVE_BYTES,
    ) -> None:
        self.blob_grace_ms = blob_grace_ms
        self.data_dir = data_dir
        self.db_path = data_dir / "satchel.db"
        self.wal_path = data_dir / "satchel.db-wal"
        self.fsync = fsync
        self.inline_max = inline_max
        self.max_record_bytes = max_record_bytes
        self.blobs = BlobDir(data_dir / "blobs", fsync=fsync)
        self.reserve = Reserve(data_dir / "reserve", reserve_bytes)
        self.writer = Writer(self._connect_writer)
        self.stats = StatsBuffer()
        self._local = threading.local()
        # Caches for the hot path, good while the shared generation stamp is unchanged.
        self.generation = Generation(data_dir / "generation")
        self._cache_stamp = -1
        self._users_by_token: dict[str, UserRow] = {}
        self._stores_by_id: dict[str, StoreRow] = {}
        self._grants: dict[tuple[int, str], str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._checkpointer: sqlite3.Connection | None = None  # used by one housekeeping task at a time

    # --- lifecycle

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA mmap_size=268435456")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        """The writer's connection: it never checkpoints, so no commit waits for a checkpoint's fsyncs."""
        conn = self._connect()
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def _checkpoint(self) -> None:
        """Copy committed pages from the WAL into the database file, beside the writer rather than in it.

        PASSIVE waits for no one; whatever a reader still needs is copied on a later tick. Past the limit,
        TRUNCATE waits for the writer's current batch and the readers' statements (milliseconds), holds
        writes back while it copies, and empties the WAL file.
        """
        if self._checkpointer is None:
            self._checkpointer = self._connect()
        try:
            large = self.wal_path.stat().st_size > WAL_LIMIT_BYTES
        except FileNotFoundError:
            large = False
        mode = "TRUNCATE" if large else "PASSIVE"
        try:
            self._checkpointer.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
        except sqlite3.OperationalError as exc:
            if not (_disk_full(exc) or _io_error(exc)):
                raise
            # On a full disk the pages stay in the WAL, where reads find them; a later tick copies them.

    async def checkpoint(self) -> None:
        await asyncio.to_thread(self._checkpoint)

    @property
    def _db(self) -> sqlite3.Connection:
        """This thread's connection; each statement sees every commit made before it began."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    async def open(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._open_files()
        except (OSError, sqlite3.Error) as exc:
            # A full disk must not keep the server from starting: reads work, and deletes make room. (SQLite
            # says "disk I/O error" when it cannot make its shared-memory file on a full disk.)
            if not ((_disk_full(exc) or _io_error(exc)) and self.reserve.release()):
                raise
            self._open_files()
        self.reserve.restore()
        self.writer.start()
        self._tasks = [
            asyncio.create_task(self._every(1.0, self.flush_stats)),
            asyncio.create_task(self._every(CHECKPOINT_SECONDS, self.checkpoint)),
            asyncio.create_task(
                self._every(min(15.0, max(self.blob_grace_ms / 1000, 0.5)), self.purge_dead_blobs)
            ),
            asyncio.create_task(self._every(ORPHAN_AGE_SECONDS / 4, self.remove_orphans, first=0.0)),
            asyncio.create_task(self._every(5.0, self._restore_reserve)),
        ]

    def _open_files(self) -> None:
        schema = resources.files("satchel.storage.sqlite").joinpath("schema.sql").read_text()
        with contextlib.closing(self._connect()) as conn:
            conn.executescript(schema)
            migrate(conn)
        self.generation.open()
        self.blobs.prepare()

    async def _restore_reserve(self) -> None:
        await asyncio.to_thread(self.reserve.restore)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.flush_stats()
        self.writer.stop()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self.generation.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    async def _every(self, seconds: float, job: Any, *, first: float | None = None) -> None:
        await asyncio.sleep(seconds if first is None else first)
        while True:
            try:
                await job()
            except StorageFull:  # retried on its next tick, once deletes have made room
                log.warning("housekeeping waits for disk space: %s", job.__name__)
            except Exception:  # housekeeping retries on its next tick
                log.exception("housekeeping failed")
            await asyncio.sleep(seconds)

    async def flush_stats(self) -> None:
        taken = self.stats.take()
        if not taken:
            return

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE stores SET read_count = read_count + ?, list_count = list_count + ?,"
                " accessed_at = max(accessed_at, ?) WHERE pk = ?",
                [(p.reads, p.lists, p.accessed_at, pk) for pk, p in taken.items()],
            )

        try:
            await self._write(job)
        except Exception:
            self.stats.put_back(taken)
            raise

    async def purge_dead_blobs(self) -> None:
        cutoff = now_ms() - self.blob_grace_ms
        names = [r[0] for r in self._db.execute("SELECT name FROM dead_blobs WHERE dead_at < ?", (cutoff,))]
        if not names:
            return
        for name in names:
            self.blobs.unlink(name)

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM dead_blobs WHERE name = ?", [(n,) for n in names])

        await self._write(job, frees=True)

    async def remove_orphans(self) -> None:
        """Unlink blob files no record names: left by a crash between renaming a blob and committing it.

        Runs at start and then every quarter of the orphan age, so a server that runs on after a crash clears
        them too; off the event loop, since it looks at every blob file.
        """
        await asyncio.to_thread(self._remove_orphans)

    def _remove_orphans(self) -> None:
        names = self.blobs.names_older_than(ORPHAN_AGE_SECONDS)
        if not names:
            return
        with contextlib.closing(self._connect()) as db:
            for name in names:
                if db.execute(BLOB_NAMED, (name,)).fetchone() is None:
                    self.blobs.unlink(name)

    # --- users and tokens

    def _fresh_caches(self) -> None:
        stamp = self.generation.read()
        if stamp != self._cache_stamp:
            self._users_by_token.clear()
            self._stores_by_id.clear()
            self._grants.clear()
            self._cache_stamp = stamp

    async def _write_meta(self, job: Any, *, frees: bool = False) -> Any:
        """A write that changes users, tokens or stores' identity: caches everywhere must drop them."""
        try:
            return await self._write(job, frees=frees)
        finally:
            self.generation.bump()

    async def user_by_token_hash(self, token_hash: str) -> UserRow | None:
        self._fresh_caches()
        cached = self._users_by_token.get(token_hash)
        if cached is not None:
            return cached
        row = self._db.execute(
            f"{USER_SELECT} JOIN tokens t ON u.id = t.user_id WHERE t.hash = ?", (token_hash,)
        ).fetchone()
        if row is None:
            return None
        return _remember(self._users_by_token, token_hash, UserRow(*row))

    async def user_by_name(self, username: str) -> UserRow | None:
        row = self._db.execute(f"{USER_SELECT} WHERE u.username = ?", (username,)).fetchone()
        return UserRow(*row) if row else None

    async def user_by_id(self, user_id: str) -> UserRow | None:
        row = self._db.execute(f"{USER_SELECT} WHERE u.id = ?", (user_id,)).fetchone()
        return UserRow(*row) if row else None

    async def list_users(self) -> list[UserRow]:
        return [UserRow(*row) for row in self._db.execute(f"{USER_SELECT} ORDER BY u.created_at, u.username")]

    async def create_user(
        self, user_id: str, username: str, now: int, *, default_general_access: str = "RESTRICTED"
    ) -> UserRow:
        def job(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO users (id, username, created_at, default_general_access)"
                    " VALUES (?, ?, ?, ?)",
                    (user_id, username, now, default_general_access),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"A user named {username!r} already exists.") from exc

        await self._write_meta(job)
        return UserRow(user_id, username, now, default_general_access)

    async def set_default_general_access(self, user_id: str, access: str) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE users SET default_general_access = ? WHERE id = ?", (access, user_id))

        await self._write_meta(job)

    async def add_token(self, user_id: str, token_hash: str, now: int) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO tokens (hash, user_id, created_at) VALUES (?, ?, ?)",
                (token_hash, user_id, now),
            )

        await self._write_meta(job)

    async def list_tokens(self, user_id: str | None = None) -> list[TokenRow]:
        where, args = ("WHERE user_id = ?", (user_id,)) if user_id is not None else ("", ())
        rows = self._db.execute(
            f"SELECT hash, user_id, created_at FROM tokens {where} ORDER BY created_at, hash",  # noqa: S608
            args,
        )
        return [TokenRow(*row) for row in rows]

    async def delete_token(self, token_hash: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM tokens WHERE hash = ?", (token_hash,)).rowcount > 0

        deleted: bool = await self._write_meta(job)
        return deleted

    # --- sharing

    async def grant_for(self, store_pk: int, user_id: str) -> str | None:
        self._fresh_caches()
        access = self._grants.get((store_pk, user_id))
        if access is None:
            row = self._db.execute(
                "SELECT access FROM grants WHERE store_pk = ? AND user_id = ?", (store_pk, user_id)
            ).fetchone()
            access = _remember(self._grants, (store_pk, user_id), row[0] if row else NO_GRANT)
        return access or None

    async def set_grant(self, store_pk: int, user_id: str, access: str | None, now: int) -> None:
        def job(conn: sqlite3.Connection) -> None:
            if access is None:
                conn.execute("DELETE FROM grants WHERE store_pk = ? AND user_id = ?", (store_pk, user_id))
            else:
                conn.execute(
                    "INSERT INTO grants (store_pk, user_id, access, created_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (store_pk, user_id) DO UPDATE SET access = excluded.access",
                    (store_pk, user_id, access, now),
                )

        await self._write_meta(job)

    async def list_grants(self, store_pk: int) -> list[GrantRow]:
        rows = self._db.execute(
            "SELECT g.user_id, u.username, g.access, g.created_at"
            " FROM grants g JOIN users u ON u.id = g.user_id WHERE g.store_pk = ? ORDER BY u.username",
            (store_pk,),
        )
        return [GrantRow(*row) for row in rows]

    # --- stores

    def _store_where(self, where: str, args: tuple[Any, ...]) -> StoreRow | None:
        row = self._db.execute(f"{STORE_SELECT} WHERE {where}", args).fetchone()
        return self._with_pending(_store(row)) if row else None

    def _with_pending(self, store: StoreRow) -> StoreRow:
        pending = self.stats.peek(store.pk)
        if pending is not None:
            store.stats.read_count += pending.reads
            store.stats.list_count += pending.lists
            store.accessed_at = max(store.accessed_at, pending.accessed_at)
        return store

    async def store_by_id(self, store_id: str, *, cached: bool = False) -> StoreRow | None:
        if not cached:
            return self._store_where("s.id = ?", (store_id,))
        self._fresh_caches()
        store = self._stores_by_id.get(store_id)
        if store is None:
            store = self._store_where("s.id = ?", (store_id,))
            if store is not None:
                _remember(self._stores_by_id, store_id, store)
        return store

    async def store_by_name(self, user_id: str, name: str) -> StoreRow | None:
        return self._store_where("s.user_id = ? AND s.name = ?", (user_id, name))

    async def create_store(self, new: NewStore) -> tuple[StoreRow, bool]:
        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT INTO stores (id, user_id, name, created_at, modified_at, accessed_at, general_access,"
                " url_signing_secret_key, schema) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, name) DO NOTHING",
                (
                    new.id,
                    new.user_id,
                    new.name,
                    new.created_at,
                    new.created_at,
                    new.created_at,
                    new.general_access,
                    new.url_signing_secret_key,
                    new.schema,
                ),
            )
            return cur.rowcount == 1

        created = await self._write(job)
        if created:
            row = await self.store_by_id(new.id)
        else:
            assert new.name is not None
            row = await self.store_by_name(new.user_id, new.name)
        if row is None:  # deleted by someone else in between
            raise NotFound("Store was not found.")
        return row, created

    async def list_stores(
        self, user_id: str, *, ownership: str, unnamed: bool, offset: int, limit: int, desc: bool
    ) -> tuple[int, list[tuple[StoreRow, str | None]]]:
        mine = "s.user_id = :user"
        shared = "g.access IS NOT NULL"
        where = {"owned": mine, "shared": shared}.get(ownership, f"({mine} OR {shared})")
        if not unnamed:
            where += " AND s.name IS NOT NULL"
        grants = "LEFT JOIN grants g ON g.store_pk = s.pk AND g.user_id = :user"
        args = {"user": user_id, "limit": limit, "offset": offset}
        total = self._db.execute(f"SELECT count(*) FROM stores s {grants} WHERE {where}", args).fetchone()[0]  # noqa: S608
        order = "DESC" if desc else "ASC"
        rows = self._db.execute(
            f"SELECT {STORE_COLUMNS}, g.access FROM stores s JOIN users u ON u.id = s.user_id {grants}"  # noqa: S608
            f" WHERE {where} ORDER BY s.created_at {order}, s.pk {order} LIMIT :limit OFFSET :offset",
            args,
        ).fetchall()
        return total, [(self._with_pending(_store(r)), r[-1]) for r in rows]

    async def update_store(
        self, pk: int, *, name: str | None, general_access: str, title: str | None, now: int
    ) -> StoreRow:
        def job(conn: sqlite3.Connection) -> None:
            try:
                cur = conn.execute(
                    "UPDATE stores SET name = ?, general_access = ?, title = ?, modified_at = ?,"
                    " accessed_at = max(accessed_at, ?) WHERE pk = ?",
                    (name, general_access, title, now, now, pk),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"A key-value store named {name!r} already exists.") from exc
            if cur.rowcount == 0:
                raise NotFound("Store was not found.")

        await self._write_meta(job)
        row = self._store_where("s.pk = ?", (pk,))
        if row is None:
            raise NotFound("Store was not found.")
        return row

    async def delete_store(self, pk: int) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO dead_blobs (name, dead_at) SELECT blob, ? FROM records"
                " WHERE store_pk = ? AND blob IS NOT NULL",
                (now_ms(), pk),
            )
            conn.execute("DELETE FROM records WHERE store_pk = ?", (pk,))
            conn.execute("DELETE FROM grants WHERE store_pk = ?", (pk,))
            conn.execute("DELETE FROM stores WHERE pk = ?", (pk,))

        await self._write_meta(job, frees=True)
        self.stats.drop(pk)

    async def expired_stores(self, cutoff: int) -> list[int]:
        rows = self._db.execute(
            "SELECT pk, accessed_at FROM stores WHERE name IS NULL AND accessed_at < ? AND modified_at < ?",
            (cutoff, cutoff),
        ).fetchall()
        expired = []
        for pk, _ in rows:
            pending = self.stats.peek(pk)
            if pending is None or pending.accessed_at < cutoff:
                expired.append(pk)
        return expired

    # --- records

    async def read_record(self, store_pk: int, key: str, *, now: int) -> RecordRead | None:
        row = self._db.execute(RECORD_SELECT, (store_pk, key)).fetchone()
        if row is None:
            return None
        self.stats.note(store_pk, now=now, reads=1)
        blob = row[6]
        return RecordRead(_head(row), row[7], self.blobs.path(blob) if blob else None)

    async def head_record(self, store_pk: int, key: str, *, now: int) -> RecordHead | None:
        row = self._db.execute(
            "SELECT key, content_type, content_encoding, size, raw_size, modified_at FROM records"
            " WHERE store_pk = ? AND key = ?",
            (store_pk, key),
        ).fetchone()
        if row is None:
            return None
        self.stats.note(store_pk, now=now)
        return _head(row)

    async def write_record(
        self,
        store_pk: int,
        key: str,
        *,
        content_type: str,
        content_encoding: str | None,
        body: UploadBody,
        now: int,
    ) -> RecordHead:
        spooled = await self.blobs.spool(
            aiter(body), inline_max=self.inline_max, max_bytes=self.max_record_bytes
        )
        head = RecordHead(key, content_type, content_encoding, spooled.size, body.raw_size, now)

        def job(conn: sqlite3.Connection) -> None:
            old = conn.execute(
                "SELECT size, blob FROM records WHERE store_pk = ? AND key = ?", (store_pk, key)
            ).fetchone()
            growth = spooled.size - (old[0] if old else 0)
            cur = conn.execute(
                "UPDATE stores SET write_count = write_count + 1, storage_bytes = storage_bytes + ?,"
                " modified_at = ?, accessed_at = max(accessed_at, ?) WHERE pk = ?",
                (growth, now, now, store_pk),
            )
            if cur.rowcount == 0:
                raise NotFound("Store was not found.")
            blob = self.blobs.commit(spooled) if spooled.tmp is not None else None
            conn.execute(
                "INSERT INTO records (store_pk, key, content_type, content_encoding, size, raw_size,"
                " modified_at, blob, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (store_pk, key) DO UPDATE SET content_type = excluded.content_type,"
                " content_encoding = excluded.content_encoding, size = excluded.size,"
                " raw_size = excluded.raw_size, modified_at = excluded.modified_at,"
                " blob = excluded.blob, body = excluded.body",
                (
                    store_pk,
                    key,
                    content_type,
                    content_encoding,
                    spooled.size,
                    body.raw_size,
                    now,
                    blob,
                    spooled.data,
                ),
            )
            if old and old[1]:
                conn.execute("INSERT OR IGNORE INTO dead_blobs (name, dead_at) VALUES (?, ?)", (old[1], now))

        try:
            await self._write(job)
        except Exception:
            # Nothing committed refers to the blob, whether or not the rename happened. (On cancellation the
            # shielded job may still commit, so the file is left alone then.)
            self._discard(spooled)
            raise
        return head

    def _discard(self, spooled: Spooled) -> None:
        if spooled.tmp is not None:
            self.blobs.unlink(spooled.tmp.name)
        self.blobs.discard(spooled)

    async def delete_record(self, store_pk: int, key: str, *, now: int) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            old = conn.execute(
                "DELETE FROM records WHERE store_pk = ? AND key = ? RETURNING size, blob", (store_pk, key)
            ).fetchone()
            if old is None:
                return False
            conn.execute(
                "UPDATE stores SET delete_count = delete_count + 1, storage_bytes = storage_bytes - ?,"
                " modified_at = ?, accessed_at = max(accessed_at, ?) WHERE pk = ?",
                (old[0], now, now, store_pk),
            )
            if old[1]:
                conn.execute("INSERT OR IGNORE INTO dead_blobs (name, dead_at) VALUES (?, ?)", (old[1], now))
            return True

        deleted: bool = await self._write(job, frees=True)
        return deleted

    async def list_keys(
        self, store_pk: int, *, prefix: str, exclusive_start_key: str | None, limit: int, now: int
    ) -> list[KeyItem]:
        # Keys are ASCII, so every key with the prefix sorts below prefix + U+FFFF.
        low = prefix if exclusive_start_key is None or exclusive_start_key < prefix else exclusive_start_key
        op = ">" if exclusive_start_key is not None and low == exclusive_start_key else ">="
        rows = self._db.execute(
            f"SELECT key, size FROM records WHERE store_pk = ? AND key {op} ? AND key < ?"  # noqa: S608
            " ORDER BY key LIMIT ?",
            (store_pk, low, prefix + "\uffff", limit),
        ).fetchall()
        self.stats.note(store_pk, now=now, lists=1)
        return [KeyItem(k, s) for k, s in rows]

    async def iter_records(self, store_pk: int, *, prefix: str) -> AsyncIterator[RecordRead]:
        after = ""
        page = 100
        while True:
            # Keyset pages of the key order; only the record's name and blob are held between pages.
            rows = self._db.execute(
                "SELECT key, content_type, content_encoding, size, raw_size, modified_at, blob, body"
                " FROM records WHERE store_pk = ? AND key > ? AND key >= ? AND key < ? ORDER BY key LIMIT ?",
                (store_pk, after, prefix, prefix + "\uffff", page),
            ).fetchall()
            for row in rows:
                yield RecordRead(_head(row), row[7], self.blobs.path(row[6]) if row[6] else None)
            if len(rows) < page:
                return
            after = rows[-1][0]

    # --- helpers

    async def _write(self, job: Any, *, frees: bool = False) -> Any:
        """Run a write job; `frees`: it makes room (a delete), so a full disk gives up the reserve for it."""
        try:
            return await self.writer.run(job)
        except sqlite3.OperationalError as exc:
            if not _disk_full(exc):
                raise
            if not frees:
                raise StorageFull("The server's disk is full; the change was not stored.") from exc
        # Another process may have released the reserve already; the room is there either way.
        await asyncio.to_thread(self.reserve.release)
        try:
            return await self.writer.run(job)
        except sqlite3.OperationalError as exc:
            if _disk_full(exc):
                raise StorageFull("The server's disk is full; the change was not stored.") from exc
            raise
