"""Datasets' items in SQLite: one row per item, numbered by seq within its dataset.

An append runs in the single writer thread, so appends to one dataset are serial by construction: each takes
the next seqs after the count it reads and raises, in the same transaction as the store's stats.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from satchel.errors import NotFound
from satchel.storage.rows import DatasetCounts, ItemBatch
from satchel.storage.sqlite.db import Database

TOUCH_STORE = (
    "UPDATE stores SET write_count = write_count + 1, storage_bytes = storage_bytes + ?, modified_at = ?,"
    " accessed_at = max(accessed_at, ?) WHERE pk = ?"
)
ADD_COUNTS = (
    "INSERT INTO datasets (store_pk, item_count, clean_item_count) VALUES (?, ?, ?)"
    " ON CONFLICT (store_pk) DO UPDATE SET item_count = item_count + excluded.item_count,"
    " clean_item_count = clean_item_count + excluded.clean_item_count"
    " RETURNING item_count, clean_item_count"
)
PAGE_ASC = "SELECT item FROM dataset_items WHERE store_pk = ? AND seq >= ? AND seq < ? ORDER BY seq"
PAGE_DESC = PAGE_ASC + " DESC"
IN_LIST = 500  # ids per IN (...) of a counts lookup, under SQLite's bound on parameters
# A push past either of these is stored on the writer's thread, not the event loop: 3,000,000 empty items
# (9 MB, under the push limit) took 35 s to insert, and every other request waited for it.
OFF_LOOP_ITEMS = 2000
OFF_LOOP_BYTES = 1024 * 1024


def _append_items(  # noqa: PLR0917 - Database.write passes a job's arguments by position
    conn: sqlite3.Connection, store_pk: int, items: list[bytes], clean_count: int, size: int, now: int
) -> DatasetCounts:
    if conn.execute(TOUCH_STORE, (size, now, now, store_pk)).rowcount == 0:
        raise NotFound("Dataset was not found.")
    total, clean = conn.execute(ADD_COUNTS, (store_pk, len(items), clean_count)).fetchone()
    start = total - len(items)
    conn.executemany(
        "INSERT INTO dataset_items (store_pk, seq, item) VALUES (?, ?, ?)",
        [(store_pk, start + i, item) for i, item in enumerate(items)],
    )
    return DatasetCounts(total, clean)


class SqliteDatasets:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def counts(self, store_pk: int) -> DatasetCounts:
        row = self.db.one("SELECT item_count, clean_item_count FROM datasets WHERE store_pk = ?", (store_pk,))
        return DatasetCounts(row[0], row[1]) if row else DatasetCounts()

    async def counts_of(self, store_pks: Sequence[int]) -> dict[int, DatasetCounts]:
        found: dict[int, DatasetCounts] = {}
        pks = list(store_pks)
        for start in range(0, len(pks), IN_LIST):
            chunk = pks[start : start + IN_LIST]
            marks = ",".join("?" * len(chunk))
            rows = self.db.all(
                "SELECT store_pk, item_count, clean_item_count FROM datasets"  # noqa: S608 - marks only
                f" WHERE store_pk IN ({marks})",
                chunk,
            )
            found.update({row[0]: DatasetCounts(row[1], row[2]) for row in rows})
        return {pk: found.get(pk, DatasetCounts()) for pk in pks}

    async def append(self, store_pk: int, batch: ItemBatch, *, now: int) -> DatasetCounts:
        large = len(batch.items) > OFF_LOOP_ITEMS or batch.size > OFF_LOOP_BYTES
        return await self.db.write(
            _append_items,
            store_pk,
            batch.items,
            batch.clean_count,
            batch.size,
            now,
            grows=True,
            off_loop=large,
        )

    async def items(self, store_pk: int, first: int, end: int, *, desc: bool) -> list[bytes]:
        rows = self.db.all(PAGE_DESC if desc else PAGE_ASC, (store_pk, first, end))
        return [row[0] for row in rows]
