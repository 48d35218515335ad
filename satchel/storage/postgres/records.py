"""Records, and the ledger of the blobs that hold the large ones.

A write reads the body first (spool: small bodies in memory, large ones into a fresh blob noted in
blob_uploads), then commits in one transaction that locks the store's row before anything else. Every
writer of a store's records takes that lock first, so the old record each one replaces is exact: stats stay
equal to the sum of the records, and every replaced blob lands on the dead list once. The same lock makes a
conditional write (If-Match, If-None-Match) atomic on every node: its check of the current ETag runs after the
lock, in the transaction that commits.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from typing import Any

from satchel.clock import now_ms
from satchel.errors import NotFound, Unavailable
from satchel.storage.base import ITERATE_BYTES
from satchel.storage.blobs.base import BlobStore
from satchel.storage.body import Hashed, RecordRead, UploadBody
from satchel.storage.conditions import WriteCondition
from satchel.storage.housekeeping import UPLOAD_MAX_AGE_MS
from satchel.storage.postgres.db import Database, is_down, within_bytes
from satchel.storage.postgres.keys import key_page
from satchel.storage.rows import RECORD_HEAD_FIELDS, DeploymentMark, KeyItem, RecordHead
from satchel.storage.spool import spool

HEAD_COLUMNS = ", ".join(RECORD_HEAD_FIELDS)
READ_COLUMNS = f"{HEAD_COLUMNS}, blob, body"
LOCK_STORE = "SELECT 1 FROM stores WHERE pk = $1 FOR NO KEY UPDATE"
CURRENT_ETAG = "SELECT etag FROM records WHERE store_pk = $1 AND key = $2"
# A few records' blob names (every node's start checks its blob store holds them): the partial index's range.
SOME_BLOBS = "SELECT blob FROM records WHERE blob IS NOT NULL LIMIT $1"
MARK = "SELECT mark, paired_at FROM deployment"
# In one statement (one snapshot, taken after the store lock): the old record as it was, its replacement,
# the store's stats and clocks, and the old blob onto the dead list.
PUT = """
WITH old AS (SELECT size, blob FROM records WHERE store_pk = $1 AND key = $2),
     put AS (
        INSERT INTO records (store_pk, key, content_type, content_encoding, size, raw_size, modified_at, blob,
                             body, etag)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (store_pk, key) DO UPDATE SET
            content_type = excluded.content_type, content_encoding = excluded.content_encoding,
            size = excluded.size, raw_size = excluded.raw_size, modified_at = excluded.modified_at,
            blob = excluded.blob, body = excluded.body, etag = excluded.etag
     ),
     stats AS (
        UPDATE stores SET write_count = write_count + 1,
                          storage_bytes = storage_bytes + $5 - coalesce((SELECT size FROM old), 0),
                          modified_at = $7, accessed_at = greatest(accessed_at, $7)
        WHERE pk = $1
     )
INSERT INTO dead_blobs (name, dead_at) SELECT blob, $7 FROM old WHERE blob IS NOT NULL
ON CONFLICT (name) DO NOTHING
"""
DELETE = """
WITH old AS (DELETE FROM records WHERE store_pk = $1 AND key = $2 RETURNING size, blob),
     stats AS (
        UPDATE stores SET delete_count = delete_count + 1, storage_bytes = storage_bytes - old.size,
                          modified_at = $3, accessed_at = greatest(accessed_at, $3)
        FROM old WHERE pk = $1
     ),
     dead AS (
        INSERT INTO dead_blobs (name, dead_at) SELECT blob, $3 FROM old WHERE blob IS NOT NULL
        ON CONFLICT (name) DO NOTHING
     )
SELECT count(*) FROM old
"""
# A commit refuses an upload this old even if still listed: housekeeping may be deleting its blob right now
# (it takes those past UPLOAD_MAX_AGE_MS), and clocks of nodes differ a little.
UPLOAD_COMMIT_MAX_AGE_MS = UPLOAD_MAX_AGE_MS - 15 * 60 * 1000
ITERATE_PAGE = 100


def _head(row: Any) -> RecordHead:
    return RecordHead.from_row(row)


class PostgresRecords:
    def __init__(self, db: Database, blobs: BlobStore, *, inline_max: int, max_record_bytes: int) -> None:
        self.db = db
        self.blobs = blobs
        self.inline_max = inline_max
        self.max_record_bytes = max_record_bytes

    def _read(self, row: Any) -> RecordRead:
        blob: str | None = row["blob"]
        if blob is None:
            return RecordRead(_head(row), row["body"])
        return RecordRead(
            _head(row), None, functools.partial(self.blobs.read, blob), self.blobs.local_path(blob)
        )

    async def read(self, store_pk: int, key: str) -> RecordRead | None:
        row = await self.db.fetchrow(
            f"SELECT {READ_COLUMNS} FROM records WHERE store_pk = $1 AND key = $2",  # noqa: S608
            store_pk,
            key,
        )
        return self._read(row) if row is not None else None

    async def head(self, store_pk: int, key: str) -> RecordHead | None:
        row = await self.db.fetchrow(
            f"SELECT {HEAD_COLUMNS} FROM records WHERE store_pk = $1 AND key = $2",  # noqa: S608
            store_pk,
            key,
        )
        return _head(row) if row is not None else None

    async def _begin_upload(self, name: str) -> None:
        await self.db.execute("INSERT INTO blob_uploads (name, started_at) VALUES ($1, $2)", name, now_ms())

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
            hashed, self.blobs, inline_max=self.inline_max, max_bytes=self.max_record_bytes,
            begin_upload=self._begin_upload, drop=self._drop,
        )  # fmt: skip
        etag = hashed.etag()
        head = RecordHead(key, content_type, content_encoding, spooled.size, body.raw_size, now, etag)
        committing = False
        try:
            async with self.db.transaction() as conn:
                if spooled.blob is not None:
                    started = await conn.fetchval(
                        "DELETE FROM blob_uploads WHERE name = $1 RETURNING started_at", spooled.blob
                    )
                    if started is None or started < now_ms() - UPLOAD_COMMIT_MAX_AGE_MS:
                        raise Unavailable("The upload took too long and was abandoned; try again.")
                if await conn.fetchval(LOCK_STORE, store_pk) is None:
                    raise NotFound("Store was not found.")
                if condition is not None:
                    await _check(conn, condition, store_pk, key)
                await conn.execute(
                    PUT, store_pk, key, content_type, content_encoding, spooled.size, body.raw_size, now,
                    spooled.blob, spooled.data, etag,
                )  # fmt: skip
                committing = True
        except Exception as exc:
            # Before the commit nothing can name the new blob. A commit cut off by a lost connection may
            # have happened, so its blob stays: were it rolled back, its upload row is back and housekeeping
            # takes the blob once abandoned.
            if spooled.blob is not None and not (committing and is_down(_cause(exc))):
                await self._drop([spooled.blob])
            raise
        return head

    async def _drop(self, names: list[str]) -> None:
        """Best effort: delete blobs no record names, then forget them; what fails here housekeeping does."""
        if not names:
            return
        with contextlib.suppress(Exception):
            await self.blobs.delete(names)
            await self.forget_blobs(names)

    async def delete(
        self, store_pk: int, key: str, *, now: int, condition: WriteCondition | None = None
    ) -> bool:
        async with self.db.transaction() as conn:
            if await conn.fetchval(LOCK_STORE, store_pk) is None:
                if condition is not None:
                    condition.check(None, exists=False)
                return False
            if condition is not None:
                await _check(conn, condition, store_pk, key)
            deleted: int = await conn.fetchval(DELETE, store_pk, key, now)
        return deleted > 0

    async def fill_etag(self, store_pk: int, key: str, etag: str) -> None:
        # Only a row still without one: any write since the body was read has set its own.
        await self.db.execute(
            "UPDATE records SET etag = $3 WHERE store_pk = $1 AND key = $2 AND etag IS NULL",
            store_pk,
            key,
            etag,
        )

    async def keys(
        self, store_pk: int, *, prefix: str, exclusive_start_key: str | None, limit: int
    ) -> list[KeyItem]:
        sql, args = key_page("key, size", store_pk, prefix=prefix, after=exclusive_start_key, limit=limit)
        return [KeyItem(row["key"], row["size"]) for row in await self.db.fetch(sql, *args)]

    async def iterate(self, store_pk: int, *, prefix: str) -> AsyncIterator[RecordRead]:
        after: str | None = None
        while True:
            # Keyset pages in key order; no connection is held between pages.
            sql, args = key_page(READ_COLUMNS, store_pk, prefix=prefix, after=after, limit=ITERATE_PAGE)
            rows = await self.db.fetch(within_bytes(sql, "key", f"${len(args) + 1}"), *args, ITERATE_BYTES)
            for row in rows:
                yield self._read(row)
            if len(rows) < ITERATE_PAGE and (not rows or rows[-1]["through"] < ITERATE_BYTES):
                return
            after = rows[-1]["key"]

    async def some_blobs(self, limit: int) -> list[str]:
        rows = await self.db.fetch(SOME_BLOBS, limit)
        return [row["blob"] for row in rows]

    async def mark(self) -> DeploymentMark | None:
        row = await self.db.fetchrow(MARK)
        return None if row is None else DeploymentMark.from_row(row)

    async def claim_mark(self, mark: str, now: int) -> DeploymentMark:
        async with self.db.transaction() as conn:
            # A node that inserts second waits for the first one's commit, then inserts nothing; the read
            # after it is a statement of its own, so it sees that commit (READ COMMITTED).
            await conn.execute(
                "INSERT INTO deployment (id, mark, created_at) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
                mark,
                now,
            )
            row = await conn.fetchrow(MARK)
        assert row is not None
        return DeploymentMark.from_row(row)

    async def paired(self, now: int) -> None:
        await self.db.execute("UPDATE deployment SET paired_at = $1 WHERE paired_at IS NULL", now)

    async def dead_blobs(self, cutoff: int, limit: int) -> list[str]:
        rows = await self.db.fetch(
            "SELECT name FROM dead_blobs WHERE dead_at < $1 ORDER BY dead_at LIMIT $2", cutoff, limit
        )
        return [row["name"] for row in rows]

    async def abandoned_uploads(self, cutoff: int, limit: int) -> list[str]:
        rows = await self.db.fetch(
            "SELECT name FROM blob_uploads WHERE started_at < $1 ORDER BY started_at LIMIT $2", cutoff, limit
        )
        return [row["name"] for row in rows]

    async def forget_blobs(self, names: Sequence[str]) -> None:
        if names:
            await self.db.execute(
                "WITH dead AS (DELETE FROM dead_blobs WHERE name = ANY($1::text[]))"
                " DELETE FROM blob_uploads WHERE name = ANY($1::text[])",
                list(names),
            )


async def _check(conn: Any, condition: WriteCondition, store_pk: int, key: str) -> None:
    """Raise PreconditionFailed unless the record (read under the store's lock) meets the condition."""
    row = await conn.fetchrow(CURRENT_ETAG, store_pk, key)
    condition.check(row["etag"] if row is not None else None, exists=row is not None)


def _cause(exc: BaseException) -> BaseException:
    """The database's own error behind an Unavailable."""
    return exc.__cause__ if isinstance(exc, Unavailable) and exc.__cause__ is not None else exc
