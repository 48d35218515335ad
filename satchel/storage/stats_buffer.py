"""Read and list counters kept in memory and written in one batch a second.

A GET must not cost a write transaction, so reads and listings only bump these counters; writes and deletes
update the store row in their own transaction. Whoever shows a store adds what is still pending here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Pending:
    reads: int = 0
    lists: int = 0
    accessed_at: int = 0


class StatsBuffer:
    def __init__(self) -> None:
        self._pending: dict[int, Pending] = {}

    def note(self, store_pk: int, *, now: int, reads: int = 0, lists: int = 0) -> None:
        entry = self._pending.get(store_pk)
        if entry is None:
            entry = self._pending[store_pk] = Pending()
        entry.reads += reads
        entry.lists += lists
        entry.accessed_at = max(entry.accessed_at, now)

    def peek(self, store_pk: int) -> Pending | None:
        return self._pending.get(store_pk)

    def drop(self, store_pk: int) -> None:
        self._pending.pop(store_pk, None)

    def take(self) -> dict[int, Pending]:
        taken, self._pending = self._pending, {}
        return taken

    def put_back(self, taken: dict[int, Pending]) -> None:
        """Return counters whose flush failed, so they are written next time."""
        for pk, entry in taken.items():
            self.note(pk, now=entry.accessed_at, reads=entry.reads, lists=entry.lists)
