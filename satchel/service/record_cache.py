"""Small records kept in each server process's memory, above the engines, so a hot read needs no query.

An entry is good while the change feed's stamp for its record is the one read just before the record was:
the engine moves that stamp right after every commit that changes the record, before the writer is answered,
from whichever process on the machine wrote it. So an acknowledged write is never answered from an older
entry, and a read that raced a write only fills an entry that is already stale. A feed that follows no
records (PostgreSQL's: a notification per record write would cost every write a round trip) gives no stamp,
and nothing is cached.

Entries are keyed by the store's id, which is never reused (its row number can be), and hold only bodies kept
inside the database, up to MAX_BODY_BYTES. The cache is bounded by bytes, bodies plus ENTRY_BYTES for the rest
of each entry; the least recently read goes first. An entry is a flat tuple of strings and numbers, which the
garbage collector stops tracking: a cache of objects would make every full collection walk all of them (pauses
of tens of milliseconds once it holds 100,000 records).
"""

from __future__ import annotations

from collections import OrderedDict

from satchel.storage import RecordHead, RecordRead, StoreRow
from satchel.storage.feed import ChangeFeed

# stamp, cost, body, then the head after its key: type, encoding, size, raw size, modified time, ETag
Entry = tuple[int, int, bytes, str, str | None, int, int, int, str | None]

MAX_BODY_BYTES = 64 * 1024
ENTRY_BYTES = 640  # the rest of an entry (key, head, tuple, ordering): about 630 bytes by tracemalloc


class RecordCache:
    def __init__(self, feed: ChangeFeed, *, max_bytes: int) -> None:
        self.feed = feed
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple[str, str], Entry] = OrderedDict()

    def get(self, store: StoreRow, key: str) -> RecordRead | None:
        entries = self._entries
        entry = entries.get((store.id, key))
        if entry is None:
            return None
        if entry[0] != self.feed.record_stamp(store.pk, key):
            self._drop((store.id, key))
            return None
        entries.move_to_end((store.id, key))
        return RecordRead(RecordHead(key, *entry[3:]), entry[2])

    def stamp(self, store: StoreRow, key: str) -> int | None:
        """Read before the record is: the stamp to keep() it under."""
        return self.feed.record_stamp(store.pk, key) if self.max_bytes else None

    def keep(self, store: StoreRow, key: str, stamp: int | None, record: RecordRead) -> None:
        body = record.inline
        if stamp is None or body is None or len(body) > MAX_BODY_BYTES:
            return
        cost = len(body) + ENTRY_BYTES
        if cost > self.max_bytes:
            return
        self._drop((store.id, key))
        entries = self._entries
        while self.bytes + cost > self.max_bytes:
            self.bytes -= entries.popitem(last=False)[1][1]
        head = record.head
        entries[(store.id, key)] = (
            stamp, cost, body, head.content_type, head.content_encoding, head.size, head.raw_size,
            head.modified_at, head.etag,
        )  # fmt: skip
        self.bytes += cost

    def _drop(self, entry_key: tuple[str, str]) -> None:
        entry = self._entries.pop(entry_key, None)
        if entry is not None:
            self.bytes -= entry[1]
