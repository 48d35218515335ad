"""Reads and listings of stores, counted in memory and added to the stores' rows once a second.

A GET must not cost a write transaction, so reads and listings only bump these counters; writes and deletes
update the store row in their own transaction. The database holds the figures for the whole deployment: each
process adds its own counts to them (never overwrites), so with any number of nodes the totals are right,
at most a second late. Whoever shows a store adds what this process still holds.
"""

from __future__ import annotations

from satchel.storage import StoreRow, StoreTable, StoreUsage


class Usage:
    def __init__(self, stores: StoreTable) -> None:
        self.stores = stores
        self._pending: dict[int, StoreUsage] = {}

    def note(self, store_pk: int, *, now: int, reads: int = 0, lists: int = 0) -> None:
        entry = self._pending.get(store_pk)
        if entry is None:
            entry = self._pending[store_pk] = StoreUsage()
        entry.reads += reads
        entry.lists += lists
        entry.accessed_at = max(entry.accessed_at, now)

    def apply(self, store: StoreRow) -> StoreRow:
        """The store with this process's pending counts added."""
        pending = self._pending.get(store.pk)
        if pending is not None:
            store.stats.read_count += pending.reads
            store.stats.list_count += pending.lists
            store.accessed_at = max(store.accessed_at, pending.accessed_at)
        return store

    def drop(self, store_pk: int) -> None:
        self._pending.pop(store_pk, None)

    async def flush(self) -> None:
        taken, self._pending = self._pending, {}
        if not taken:
            return
        try:
            await self.stores.add_usage(taken)
        except Exception:
            for pk, entry in taken.items():  # written with the next flush
                self.note(pk, now=entry.accessed_at, reads=entry.reads, lists=entry.lists)
            raise
