"""Key-value stores in SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from satchel.clock import now_ms
from satchel.errors import Conflict, NotFound
from satchel.storage.base import StoreOrder
from satchel.storage.rows import (
    PAGE_COLUMNS,
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
from satchel.storage.sqlite.db import Database

# What a store's rows are in, whatever its kind; deleted with it.
CHILD_TABLES = ("records", "grants", "datasets", "dataset_items", "request_queues", "requests")
# What is stored, for /metrics: storages and their bytes by kind; records, dataset items, queue requests.
TOTALS_BY_KIND = (
    "SELECT kind, count(*), coalesce(sum(storage_bytes), 0) FROM stores GROUP BY kind ORDER BY kind"
)
TOTALS = (
    "SELECT (SELECT count(*) FROM records), (SELECT coalesce(sum(item_count), 0) FROM datasets),"
    " (SELECT coalesce(sum(total_count), 0) FROM request_queues)"
)
# What an expired store is: unnamed, neither used nor changed since the cutoff.
EXPIRED = "name IS NULL AND accessed_at < :cutoff AND modified_at < :cutoff"
# What each sort order sorts by before the pk. SQLite compares text as bytes: names in UTF-8 binary order.
ORDER_BY = {
    StoreOrder.CREATED: ("s.created_at",),
    StoreOrder.NAME: ("s.name",),
    StoreOrder.SIZE: ("s.storage_bytes",),
    StoreOrder.MODIFIED: ("s.modified_at",),
}


def _insert_store(conn: sqlite3.Connection, new: NewStore) -> bool:
    cur = conn.execute(
        "INSERT INTO stores (id, kind, user_id, name, created_at, modified_at, accessed_at,"
        " general_access, url_signing_secret_key, schema) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (user_id, kind, name) DO NOTHING",
        (
            new.id,
            new.kind,
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


def _update_store(  # noqa: PLR0917 - Database.write passes a job's arguments by position
    conn: sqlite3.Connection,
    pk: int,
    name: str | None,
    general_access: GeneralAccess,
    title: str | None,
    now: int,
) -> None:
    try:
        cur = conn.execute(
            "UPDATE stores SET name = ?, general_access = ?, title = ?, modified_at = ?,"
            " accessed_at = max(accessed_at, ?) WHERE pk = ?",
            (name, general_access, title, now, now, pk),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"That name is taken: {name!r}.") from exc
    if cur.rowcount == 0:
        raise NotFound("Store was not found.")


def _set_url_signing_secret_key(conn: sqlite3.Connection, pk: int, secret: str, now: int) -> None:
    cur = conn.execute(
        "UPDATE stores SET url_signing_secret_key = ?, modified_at = ?,"
        " accessed_at = max(accessed_at, ?) WHERE pk = ?",
        (secret, now, now, pk),
    )
    if cur.rowcount == 0:
        raise NotFound("Store was not found.")


def _delete_store(conn: sqlite3.Connection, pk: int, unused_since: int | None) -> bool:
    if unused_since is not None:
        # Checked inside the writer's transaction: a write or use since the sweeper chose it keeps it.
        still = conn.execute(
            f"SELECT 1 FROM stores WHERE pk = :pk AND {EXPIRED}",  # noqa: S608
            {"pk": pk, "cutoff": unused_since},
        ).fetchone()
        if still is None:
            return False
    conn.execute(
        "INSERT OR IGNORE INTO dead_blobs (name, dead_at) SELECT blob, ? FROM records"
        " WHERE store_pk = ? AND blob IS NOT NULL",
        (now_ms(), pk),
    )
    for table in CHILD_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE store_pk = ?", (pk,))  # noqa: S608 - constants
    return conn.execute("DELETE FROM stores WHERE pk = ?", (pk,)).rowcount > 0


def _add_usage(conn: sqlite3.Connection, usage: Mapping[int, StoreUsage]) -> None:
    conn.executemany(
        "UPDATE stores SET read_count = read_count + ?, list_count = list_count + ?,"
        " accessed_at = max(accessed_at, ?) WHERE pk = ?",
        [(u.reads, u.lists, u.accessed_at, pk) for pk, u in usage.items()],
    )


class SqliteStores:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _where(self, where: str, args: tuple[Any, ...]) -> StoreRow | None:
        row = self.db.one(f"{STORE_SELECT} WHERE {where}", args)
        return StoreRow.from_row(row) if row else None

    async def by_id(self, store_id: str) -> StoreRow | None:
        return self._where("s.id = ?", (store_id,))

    async def by_name(self, user_id: str, kind: StorageKind, name: str) -> StoreRow | None:
        return self._where("s.user_id = ? AND s.kind = ? AND s.name = ?", (user_id, kind, name))

    async def create(self, new: NewStore) -> tuple[StoreRow, bool]:
        created = await self.db.write(_insert_store, new)
        if created:
            row = await self.by_id(new.id)
        else:
            assert new.name is not None
            row = await self.by_name(new.user_id, new.kind, new.name)
        if row is None:  # deleted by someone else in between
            raise NotFound("Store was not found.")
        return row, created

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
        mine = "s.user_id = :user"
        shared = "g.access IS NOT NULL"
        where = {Ownership.OWNED: mine, Ownership.SHARED: shared}.get(ownership, f"({mine} OR {shared})")
        where = f"s.kind = :kind AND {where}"
        if search:
            where += " AND (instr(lower(s.name), :search) > 0 OR s.id = :search_id)"
        if not unnamed:
            # A search by a storage's id finds it, named or not: it was asked for by its id.
            where += " AND (s.name IS NOT NULL OR s.id = :search_id)" if search else " AND s.name IS NOT NULL"
        grants = "LEFT JOIN grants g ON g.store_pk = s.pk AND g.user_id = :user"
        args = {
            "user": user_id,
            "kind": kind,
            "limit": limit,
            "offset": offset,
            "search": (search or "").lower(),
            "search_id": search,
        }
        total = self.db.one(f"SELECT count(*) FROM stores s {grants} WHERE {where}", args)[0]  # type: ignore[index]  # noqa: S608
        direction = "DESC" if desc else "ASC"
        # Unnamed stores come last by name, whatever the direction.
        keys = ["s.name IS NULL"] if order is StoreOrder.NAME else []
        sort = ", ".join(
            [*keys, *(f"{column} {direction}" for column in ORDER_BY[order]), f"s.pk {direction}"]
        )
        rows = self.db.all(
            f"SELECT {PAGE_COLUMNS}, g.access AS grant_access"  # noqa: S608
            f" FROM stores s JOIN users u ON u.id = s.user_id {grants} WHERE {where}"
            f" ORDER BY {sort} LIMIT :limit OFFSET :offset",
            args,
        )
        return total, [
            (StoreRow.from_row(r), Grant(r["grant_access"]) if r["grant_access"] else None) for r in rows
        ]

    async def update(
        self, pk: int, *, name: str | None, general_access: GeneralAccess, title: str | None, now: int
    ) -> StoreRow:
        await self.db.write(_update_store, pk, name, general_access, title, now)
        return self._reread(pk)

    def _reread(self, pk: int) -> StoreRow:
        row = self._where("s.pk = ?", (pk,))
        if row is None:
            raise NotFound("Store was not found.")
        return row

    async def set_url_signing_secret_key(self, pk: int, secret: str, *, now: int) -> StoreRow:
        await self.db.write(_set_url_signing_secret_key, pk, secret, now)
        return self._reread(pk)

    async def delete(self, pk: int, *, unused_since: int | None = None) -> bool:
        # On the writer's thread: a storage may hold millions of rows, and the loop must go on answering.
        return await self.db.write(_delete_store, pk, unused_since, frees=True, off_loop=True)

    async def expired(self, cutoff: int, limit: int) -> list[int]:
        rows = self.db.all(
            f"SELECT pk FROM stores WHERE {EXPIRED} LIMIT :limit",  # noqa: S608
            {"cutoff": cutoff, "limit": limit},
        )
        return [row["pk"] for row in rows]

    async def add_usage(self, usage: Mapping[int, StoreUsage]) -> None:
        await self.db.write(_add_usage, usage)

    async def totals(self) -> StorageTotals:
        # Off the event loop, on that thread's own connection: counting records reads their whole index.
        return await self.db.in_thread(self._totals)

    def _totals(self) -> StorageTotals:
        kinds = self.db.all(TOTALS_BY_KIND)
        counts = self.db.one(TOTALS)
        assert counts is not None
        return StorageTotals([(row[0], row[1], row[2]) for row in kinds], counts[0], counts[1], counts[2])
