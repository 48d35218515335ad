"""Records in SQLite: small bodies inline in their row, large ones in the blob store."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Sequence
from typing import Any

from satchel.clock import now_ms
from satchel.errors import NotFound, Unavailable
from satchel.storage.base import ITERATE_BYTES
from satchel.storage.blobs.base import BlobStore
from satchel.storage.body import Hashed, RecordRead, UploadBody
from satchel.storage.conditions import WriteCondition
from satchel.storage.rows import RECORD_HEAD_FIELDS, DeploymentMark, KeyItem, RecordHead
from satchel.storage.spool import spool
from satchel.storage.sqlite.db import Database, rows_within
from satchel.storage.sqlite.link import InDoubt

HEAD_COLUMNS = ", ".join(RECORD_HEAD_FIELDS)
HEAD_WIDTH = len(RECORD_HEAD_FIELDS)
RECORD_SELECT = f"SELECT {HEAD_COLUMNS}, blob, body FROM records WHERE store_pk = ? AND key = ?"  # noqa: S608
PAGE = 100  # records per keyset page when iterating a store
MARK = "SELECT mark, paired_at FROM deployment"


def _begin_upload(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("INSERT INTO blob_uploads (name, started_at) VALUES (?, ?)", (name, now_ms()))


def _put_record(  # noqa: PLR0917 - Database.write passes a job's arguments by position
    conn: sqlite3.Connection,
    store_pk: int,
    key: str,
    content_type: str,
    content_encoding: str | None,
    blob: str | None,
    size: int,
    data: bytes | None,
    raw_size: int,
    etag: str,
    now: int,
    condition: WriteCondition | None,
) -> None:
    if blob is not None:
        taken = conn.execute("DELETE FROM blob_uploads WHERE name = ?", (blob,)).rowcount
        if not taken:  # declared abandoned by housekeeping: the blob may be gone
            raise Unavailable("The upload took too long and was given up; send it again.")
    old = conn.execute(
        "SELECT size, blob, etag FROM records WHERE store_pk = ? AND key = ?", (store_pk, key)
    ).fetchone()
    if condition is not None:  # in the one writer's transaction: nothing can change it meanwhile
        condition.check(old["etag"] if old else None, exists=old is not None)
    growth = size - (old["size"] if old else 0)
    cur = conn.execute(
        "UPDATE stores SET write_count = write_count + 1, storage_bytes = storage_bytes + ?,"
        " modified_at = ?, accessed_at = max(accessed_at, ?) WHERE pk = ?",
        (growth, now, now, store_pk),
    )
    if cur.rowcount == 0:
        raise NotFound("Store was not found.")
    conn.execute(
        "INSERT INTO records (store_pk, key, content_type, content_encoding, size, raw_size,"
        " modified_at, blob, body, etag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (store_pk, key) DO UPDATE SET content_type = excluded.content_type,"
        " content_encoding = excluded.content_encoding, size = excluded.size,"
        " raw_size = excluded.raw_size, modified_at = excluded.modified_at,"
        " blob = excluded.blob, body = excluded.body, etag = excluded.etag",
        (store_pk, key, content_type, content_encoding, size, raw_size, now, blob, data, etag),
    )
    if old and old["blob"]:
        conn.execute("INSERT OR IGNORE INTO dead_blobs (name, dead_at) VALUES (?, ?)", (old["blob"], now))


def _delete_record(
    conn: sqlite3.Connection, store_pk: int, key: str, now: int, condition: WriteCondition | None
) -> bool:
    if condition is not None:
        current = conn.execute(
            "SELECT etag FROM records WHERE store_pk = ? AND key = ?", (store_pk, key)
        ).fetchone()
        condition.check(current["etag"] if current else None, exists=current is not None)
    old = conn.execute(
        "DELETE FROM records WHERE store_pk = ? AND key = ? RETURNING size, blob", (store_pk, key)
    ).fetchone()
    if old is None:
        return False
    conn.execute(
        "UPDATE stores SET delete_count = delete_count + 1, storage_bytes = storage_bytes - ?,"
        " modified_at = ?, accessed_at = max(accessed_at, ?) WHERE pk = ?",
        (old["size"], now, now, store_pk),
    )
    if old["blob"]:
        conn.execute("INSERT OR IGNORE INTO dead_blobs (name, dead_at) VALUES (?, ?)", (old["blob"], now))
    return True


def _fill_etag(conn: sqlite3.Connection, store_pk: int, key: str, etag: str) -> None:
    # Only a row still without one: any write since the body was read has set its own.
    conn.execute(
        "UPDATE records SET etag = ? WHERE store_pk = ? AND key = ? AND etag IS NULL", (etag, store_pk, key)
    )


def _claim_mark(conn: sqlite3.Connection, mark: str, now: int) -> tuple[str, int | None]:
    conn.execute(
        "INSERT INTO deployment (id, mark, created_at) VALUES (1, ?, ?) ON CONFLICT DO NOTHING", (mark, now)
    )
    kept, paired_at = conn.execute(MARK).fetchone()
    return kept, paired_at  # plain data: another process may run the job (Database.write)


def _paired(conn: sqlite3.Connection, now: int) -> None:
    conn.execute("UPDATE deployment SET paired_at = ? WHERE paired_at IS NULL", (now,))


def _forget_blobs(conn: sqlite3.Connection, names: Sequence[str]) -> None:
    conn.executemany("DELETE FROM dead_blobs WHERE name = ?", [(n,) for n in names])
    conn.executemany("DELETE FROM blob_uploads WHERE name = ?", [(n,) for n in names])


class SqliteRecords:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        inline_max: int,
        max_record_bytes: int,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.inline_max = inline_max
        self.max_record_bytes = max_record_bytes

    def _read(self, row: Sequence[Any]) -> RecordRead:
        """A record off a row of RECORD_SELECT's columns (a tuple, or a sqlite3.Row read by position)."""
        head = RecordHead(*row[:HEAD_WIDTH])
        blob: str | None = row[HEAD_WIDTH]
        if blob is None:
            return RecordRead(head, row[HEAD_WIDTH + 1])
        return RecordRead(head, None, functools.partial(self.blobs.read, blob), self.blobs.local_path(blob))

    async def read(self, store_pk: int, key: str) -> RecordRead | None:
        row = self.db.point(RECORD_SELECT, (store_pk, key))
        return self._read(row) if row else None

    async def head(self, store_pk: int, key: str) -> RecordHead | None:
        row = self.db.point(
            f"SELECT {HEAD_COLUMNS} FROM records WHERE store_pk = ? AND key = ?",  # noqa: S608
            (store_pk, key),
        )
        return RecordHead(*row) if row else None

    async def _begin_upload(self, name: str) -> None:
        await self.db.write(_begin_upload, name, grows=True)

    async def write(
        self,
        store_pk: int,
        key: str,
        *,
        content_type: str,
        content_encoding: str | None,
        body: UploadBody,
        now: int,
        condition: WriteCondition | None = None,
    ) -> RecordHead:
        hashed = Hashed(body)
        spooled = await spool(
            hashed,
            self.blobs,
            inline_max=self.inline_max,
            max_bytes=self.max_record_bytes,
            begin_upload=self._begin_upload,
            drop=self._drop,
        )
        etag = hashed.etag()
        head = RecordHead(key, content_type, content_encoding, spooled.size, body.raw_size, now, etag)

        try:
            await self.db.write(
                _put_record,
                store_pk,
                key,
                content_type,
                content_encoding,
                spooled.blob,
                spooled.size,
                spooled.data,
                body.raw_size,
                etag,
                now,
                condition,
                grows=True,
                record=(store_pk, key),
            )
        except Exception as exc:
            # Nothing committed names the blob, unless the lead took the job and died before it answered: it
            # may have committed, so the blob stays, as on cancellation (the queued job may still commit). If
            # it did not commit, housekeeping finds the upload row.
            if spooled.blob is not None and not isinstance(exc, InDoubt):
                await self._drop([spooled.blob])
            raise
        return head

    async def _drop(self, names: list[str]) -> None:
        """Best effort: delete blobs no record names, then forget them; what fails here housekeeping does."""
        with contextlib.suppress(Exception):
            await self.blobs.delete(names)
            await self.forget_blobs(names)

    async def delete(
        self, store_pk: int, key: str, *, now: int, condition: WriteCondition | None = None
    ) -> bool:
        return await self.db.write(
            _delete_record,
            store_pk,
            key,
            now,
            condition,
            frees=True,
            record=(store_pk, key),
        )

    async def fill_etag(self, store_pk: int, key: str, etag: str) -> None:
        await self.db.write(_fill_etag, store_pk, key, etag, record=(store_pk, key))

    async def keys(
        self, store_pk: int, *, prefix: str, exclusive_start_key: str | None, limit: int
    ) -> list[KeyItem]:
        # Keys are ASCII, so every key with the prefix sorts below prefix + U+FFFF.
        low = prefix if exclusive_start_key is None or exclusive_start_key < prefix else exclusive_start_key
        op = ">" if exclusive_start_key is not None and low == exclusive_start_key else ">="
        rows = self.db.conn.execute(
            f"SELECT key, size FROM records WHERE store_pk = ? AND key {op} ? AND key < ?"  # noqa: S608
            " ORDER BY key LIMIT ?",
            (store_pk, low, prefix + "\uffff", limit),
        ).fetchall()
        return [KeyItem(k, s) for k, s in rows]

    async def iterate(self, store_pk: int, *, prefix: str) -> AsyncIterator[RecordRead]:
        after = ""
        while True:
            # Keyset pages of the key order; only the record's name and blob are held between pages.
            rows, cut = rows_within(
                self.db.conn.execute(
                    f"SELECT {HEAD_COLUMNS}, blob, body FROM records"  # noqa: S608
                    " WHERE store_pk = ? AND key > ? AND key >= ? AND key < ? ORDER BY key LIMIT ?",
                    (store_pk, after, prefix, prefix + "\uffff", PAGE),
                ),
                ITERATE_BYTES,
            )
            for row in rows:
                yield self._read(row)
            if len(rows) < PAGE and not cut:
                return
            after = rows[-1]["key"]

    # --- the blob ledger

    async def some_blobs(self, limit: int) -> list[str]:
        rows = self.db.all("SELECT blob FROM records WHERE blob IS NOT NULL LIMIT ?", (limit,))
        return [row["blob"] for row in rows]

    async def mark(self) -> DeploymentMark | None:
        row = self.db.one(MARK)
        return None if row is None else DeploymentMark.from_row(row)

    async def claim_mark(self, mark: str, now: int) -> DeploymentMark:
        kept, paired_at = await self.db.write(_claim_mark, mark, now)
        return DeploymentMark(kept, paired_at is not None)

    async def paired(self, now: int) -> None:
        await self.db.write(_paired, now)

    async def dead_blobs(self, cutoff: int, limit: int) -> list[str]:
        rows = self.db.all("SELECT name FROM dead_blobs WHERE dead_at < ? LIMIT ?", (cutoff, limit))
        return [row["name"] for row in rows]

    async def abandoned_uploads(self, cutoff: int, limit: int) -> list[str]:
        rows = self.db.all("SELECT name FROM blob_uploads WHERE started_at < ? LIMIT ?", (cutoff, limit))
        return [row["name"] for row in rows]

    async def forget_blobs(self, names: Sequence[str]) -> None:
        await self.db.write(_forget_blobs, names, tidies=True)
