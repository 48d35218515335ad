"""Datasets' items in PostgreSQL: one row per item, keyed by (store_pk, seq).

An append locks the store's row first, as every writer of a store does (stores.py), so appends to one dataset
queue on that lock: each takes the next seqs after the count it raises, in one transaction with the stats.
"""

from __future__ import annotations

from collections.abc import Sequence

from satchel.errors import NotFound
from satchel.storage.postgres.db import Database
from satchel.storage.rows import DatasetCounts, ItemBatch

TOUCH_STORE = """
UPDATE stores SET write_count = write_count + 1, storage_bytes = storage_bytes + $2, modified_at = $3,
                  accessed_at = greatest(accessed_at, $3)
WHERE pk = $1 RETURNING pk
"""
ADD_COUNTS = """
INSERT INTO datasets AS d (store_pk, item_count, clean_item_count) VALUES ($1, $2, $3)
ON CONFLICT (store_pk) DO UPDATE SET item_count = d.item_count + excluded.item_count,
                                     clean_item_count = d.clean_item_count + excluded.clean_item_count
RETURNING item_count, clean_item_count
"""
INSERT_ITEMS = """
INSERT INTO dataset_items (store_pk, seq, item)
SELECT $1, $2 + t.ord - 1, t.item FROM unnest($3::bytea[]) WITH ORDINALITY AS t (item, ord)
"""
PAGE_ASC = "SELECT item FROM dataset_items WHERE store_pk = $1 AND seq >= $2 AND seq < $3 ORDER BY seq"
PAGE_DESC = PAGE_ASC + " DESC"


class PostgresDatasets:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def counts(self, store_pk: int) -> DatasetCounts:
        row = await self.db.fetchrow(
            "SELECT item_count, clean_item_count FROM datasets WHERE store_pk = $1", store_pk
        )
        return DatasetCounts(row[0], row[1]) if row else DatasetCounts()

    async def counts_of(self, store_pks: Sequence[int]) -> dict[int, DatasetCounts]:
        rows = await self.db.fetch(
            "SELECT store_pk, item_count, clean_item_count FROM datasets WHERE store_pk = ANY($1::bigint[])",
            list(store_pks),
        )
        found = {row[0]: DatasetCounts(row[1], row[2]) for row in rows}
        return {pk: found.get(pk, DatasetCounts()) for pk in store_pks}

    async def append(self, store_pk: int, batch: ItemBatch, *, now: int) -> DatasetCounts:
        async with self.db.transaction() as conn:
            if await conn.fetchval(TOUCH_STORE, store_pk, batch.size, now) is None:
                raise NotFound("Dataset was not found.")
            row = await conn.fetchrow(ADD_COUNTS, store_pk, len(batch.items), batch.clean_count)
            assert row is not None
            await conn.execute(INSERT_ITEMS, store_pk, row[0] - len(batch.items), batch.items)
            return DatasetCounts(row[0], row[1])

    async def items(self, store_pk: int, first: int, end: int, *, desc: bool) -> list[bytes]:
        rows = await self.db.fetch(PAGE_DESC if desc else PAGE_ASC, store_pk, first, end)
        return [row[0] for row in rows]
