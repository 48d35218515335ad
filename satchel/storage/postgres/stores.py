"""Key-value stores: identity, access, and their stats and clocks.

Every transaction that changes a store's records or stats locks the store's row first (records.py, delete
and add_usage here), so writers of one store queue on one lock and never deadlock on each other.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from satchel.clock import now_ms
from satchel.errors import Conflict, NotFound
from satchel.storage.base import StoreOrder
from satchel.storage.postgres.db import Database, holds_nul
from satchel.storage.rows import (
    OWNER_JOIN,
    PAGE_COLUMNS,
    STORE_COLUMNS,
    STORE_SELECT,
    GeneralAccess,
    Grant,
    NewStore,
    Ownership,
    StorageKind,
    StorageTotals,
    StoreRow,
    StoreUsage,
)

CREATE = f"""
WITH s AS (
    INSERT INTO stores (id, user_id, name, created_at, modified_at, accessed_at, general_access,
                        url_signing_secret_key, schema, kind)
    VALUES ($1, $2, $3, $4, $4, $4, $5, $6, $7, $8)
    ON CONFLICT (user_id, kind, name) DO NOTHING
    RETURNING *
) SELECT {STORE_COLUMNS} FROM s {OWNER_JOIN}
"""  # noqa: S608
UPDATE = f"""
WITH s AS (
    UPDATE stores SET name = $2, general_access = $3, title = $4, modified_at = $5,
                      accessed_at = greatest(accessed_at, $5)
    WHERE pk = $1
    RETURNING *
) SELECT {STORE_COLUMNS} FROM s {OWNER_JOIN}
"""  # noqa: S608
SET_SECRET = f"""
WITH s AS (
    UPDATE stores SET url_signing_secret_key = $2, modified_at = $3, accessed_at = greatest(accessed_at, $3)
    WHERE pk = $1
    RETURNING *
) SELECT {STORE_COLUMNS} FROM s {OWNER_JOIN}
"""  # noqa: S608
# One statement: records go (their blobs to the dead list), then grants, items and requests, then the store.
# Foreign keys are checked at the statement's end, when all are gone.
DELETE = """
WITH gone AS (DELETE FROM records WHERE store_pk = $1 RETURNING blob),
     dead AS (INSERT INTO dead_blobs (name, dead_at) SELECT blob, $2 FROM gone WHERE blob IS NOT NULL
              ON CONFLICT (name) DO NOTHING),
     shares AS (DELETE FROM grants WHERE store_pk = $1),
     items AS (DELETE FROM dataset_items WHERE store_pk = $1),
     dataset AS (DELETE FROM datasets WHERE store_pk = $1),
     requests AS (DELETE FROM requests WHERE store_pk = $1),
     queue AS (DELETE FROM request_queues WHERE store_pk = $1)
DELETE FROM stores WHERE pk = $1
"""
UNUSED = "name IS NULL AND accessed_at < $2 AND modified_at < $2"
ADD_USAGE = """
UPDATE stores s SET read_count = s.read_count + u.reads, list_count = s.list_count + u.lists,
                    accessed_at = greatest(s.accessed_at, u.accessed_at)
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u (pk, reads, lists, accessed_at)
WHERE s.pk = u.pk
"""
LOCK_IN_ORDER = "SELECT FROM stores WHERE pk = ANY($1::bigint[]) ORDER BY pk FOR NO KEY UPDATE"
# What each sort order sorts by before the pk; names compared as bytes (the "C" collation of the UTF-8
# database), as SQLite does, and unnamed stores last.
ORDER_BY = {
    StoreOrder.CREATED: ("s.created_at",),
    StoreOrder.NAME: ('s.name COLLATE "C"',),
    StoreOrder.SIZE: ("s.storage_bytes",),
    StoreOrder.MODIFIED: ("s.modified_at",),
}
# What is stored, for /metrics: storages and their bytes by kind; records, dataset items, queue requests.
TOTALS_BY_KIND = (
    "SELECT kind, count(*), coalesce(sum(storage_bytes), 0)::bigint FROM stores GROUP BY kind ORDER BY kind"
)
TOTALS = (
    "SELECT (SELECT count(*) FROM records), (SELECT coalesce(sum(item_count), 0)::bigint FROM datasets),"
    " (SELECT coalesce(sum(total_count), 0)::bigint FROM request_queues)"
)
CREATE_TRIES = 3  # a store found taken by name may be deleted before it is read back; then insert again


class PostgresStores:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, new: NewStore) -> tuple[StoreRow, bool]:
        for _ in range(CREATE_TRIES):
            row = await self.db.fetchrow(
                CREATE, new.id, new.user_id, new.name, new.created_at, str(new.general_access),
                new.url_signing_secret_key, new.schema, str(new.kind),
            )  # fmt: skip
            if row is not None:
                return StoreRow.from_row(row), True
            assert new.name is not None  # only a name can conflict
            existing = await self.by_name(new.user_id, new.kind, new.name)
            if existing is not None:
                return existing, False
        raise NotFound("Store was not found.")

    async def _one(self, where: str, *args: object) -> StoreRow | None:
        if holds_nul(*args):
            return None
        row = await self.db.fetchrow(f"{STORE_SELECT} WHERE {where}", *args)
        return StoreRow.from_row(row) if row is not None else None

    async def by_id(self, store_id: str) -> StoreRow | None:
        return await self._one("s.id = $1", store_id)

    async def by_name(self, user_id: str, kind: StorageKind, name: str) -> StoreRow | None:
        return await self._one("s.user_id = $1 AND s.kind = $2 AND s.name = $3", user_id, str(kind), name)

    async def page(
        self,
        user_id: str,
        kind: StorageKind,
        *,
        ownership: Ownership,
        unnamed: bool,
        offset: int,
        limit: int,
        desc: bool,
        order: StoreOrder = StoreOrder.CREATED,
        search: str | None = None,
    ) -> tuple[int, list[tuple[StoreRow, Grant | None]]]:
        # Owned and shared stores as two index lookups joined by UNION ALL, rather than one OR across a
        # join, which would read every store. $1 is the user, $2 the kind, $3 and $4 the search.
        named = " AND s.kind = $2"
        args: list[object] = [user_id, str(kind)]
        if search:
            # A search by a storage's id finds it, named or not: it was asked for by its id.
            named += " AND (strpos(lower(s.name), $3) > 0 OR s.id = $4)"
            args += [search.lower(), search]
            if not unnamed:
                named += " AND (s.name IS NOT NULL OR s.id = $4)"
        elif not unnamed:
            named += " AND s.name IS NOT NULL"
        parts = []
        if ownership != Ownership.SHARED:
            owned = "SELECT s.pk, NULL::text AS access FROM stores s WHERE s.user_id = $1"
            parts.append(owned + named)
        if ownership != Ownership.OWNED:
            parts.append(
                "SELECT s.pk, g.access FROM grants g JOIN stores s ON s.pk = g.store_pk"  # noqa: S608
                f" WHERE g.user_id = $1 AND s.user_id <> $1{named}"
            )
        listed = " UNION ALL ".join(parts)
        direction = "DESC" if desc else "ASC"
        # Unnamed stores come last by name, whatever the direction.
        keys = ["s.name IS NULL"] if order is StoreOrder.NAME else []
        sort = ", ".join(
            [*keys, *(f"{column} {direction}" for column in ORDER_BY[order]), f"s.pk {direction}"]
        )
        window = f"LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
        async with self.db.connection() as conn:
            total: int = await conn.fetchval(f"SELECT count(*) FROM ({listed}) l", *args)  # noqa: S608
            rows = await conn.fetch(
                f"SELECT {PAGE_COLUMNS}, l.access AS grant_access FROM ({listed}) l"  # noqa: S608
                f" JOIN stores s ON s.pk = l.pk {OWNER_JOIN} ORDER BY {sort} {window}",
                *args, limit, offset,
            )  # fmt: skip
        return total, [
            (StoreRow.from_row(r), Grant(r["grant_access"]) if r["grant_access"] else None) for r in rows
        ]

    async def update(
        self, pk: int, *, name: str | None, general_access: GeneralAccess, title: str | None, now: int
    ) -> StoreRow:
        try:
            row = await self.db.fetchrow(UPDATE, pk, name, str(general_access), title, now)
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"That name is taken: {name!r}.") from exc
        if row is None:
            raise NotFound("Store was not found.")
        return StoreRow.from_row(row)

    async def set_url_signing_secret_key(self, pk: int, secret: str, *, now: int) -> StoreRow:
        row = await self.db.fetchrow(SET_SECRET, pk, secret, now)
        if row is None:
            raise NotFound("Store was not found.")
        return StoreRow.from_row(row)

    async def delete(self, pk: int, *, unused_since: int | None = None) -> bool:
        async with self.db.transaction() as conn:
            # The lock waits for a writer of the store to finish; the expiry is then checked on its last
            # committed state, so a store used in the meantime is kept.
            if unused_since is None:
                found = await conn.fetchval("SELECT 1 FROM stores WHERE pk = $1 FOR UPDATE", pk)
            else:
                found = await conn.fetchval(
                    f"SELECT 1 FROM stores WHERE pk = $1 AND {UNUSED} FOR UPDATE",  # noqa: S608
                    pk,
                    unused_since,
                )
            if found is None:
                return False
            await conn.execute(DELETE, pk, now_ms())
        return True

    async def expired(self, cutoff: int, limit: int) -> list[int]:
        rows = await self.db.fetch(
            "SELECT pk FROM stores WHERE name IS NULL AND accessed_at < $1 AND modified_at < $1"
            " ORDER BY accessed_at LIMIT $2",
            cutoff, limit,
        )  # fmt: skip
        return [row["pk"] for row in rows]

    async def add_usage(self, usage: Mapping[int, StoreUsage]) -> None:
        if not usage:
            return
        pks = sorted(usage)
        async with self.db.transaction() as conn:
            # Rows locked in pk order: two nodes adding usage of the same stores at once cannot deadlock.
            await conn.execute(LOCK_IN_ORDER, pks)
            await conn.execute(
                ADD_USAGE,
                pks,
                [usage[pk].reads for pk in pks],
                [usage[pk].lists for pk in pks],
                [usage[pk].accessed_at for pk in pks],
            )

    async def totals(self) -> StorageTotals:
        async with self.db.connection() as conn:
            kinds = await conn.fetch(TOTALS_BY_KIND)
            counts = await conn.fetchrow(TOTALS)
        assert counts is not None
        return StorageTotals([(row[0], row[1], row[2]) for row in kinds], counts[0], counts[1], counts[2])
