"""The change feed: how caches above the engines learn that users, tokens, grants or stores changed.

A cache is good while the feed's stamp is the one it was filled under. Publishing changes the stamp for every
process the transport reaches: this process alone (LocalFeed), every process on one data dir (StampFeed, a
memory-mapped file), or every node of a deployment (PostgreSQL LISTEN/NOTIFY, postgres/feed.py). Reading the
stamp costs a memory load, so every request can check it.

Records change far more often than stores, so they have stamps of their own: a record's stamp is one of
RECORD_SLOTS slots picked by a hash of its store and key, and the engine moves it after every commit that
changes the record (so a write also invalidates the few other records that share its slot, and nothing else).
A slot takes a random value, never a counter: two processes moving one slot at once cannot both write the
value a reader filled under. A feed for which a stamp per record write would cost a round trip (PostgreSQL's)
gives no record stamps, and records are then not cached.
"""

from __future__ import annotations

import itertools
import mmap
import os
import random
import secrets
import struct
import zlib
from pathlib import Path
from typing import Protocol

STAMP = struct.Struct("<Q")
RECORD_SLOTS = 4096


def record_slot(store_pk: int, key: str) -> int:
    """A record's slot, the same in every process (str's own hash differs between processes)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass"), store_pk & 0xFFFFFFFF) % RECORD_SLOTS


class ChangeFeed(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    def stamp(self) -> int:
        """A value that differs from every earlier one once any change was published anywhere it reaches.

        A feed that cannot tell (its connection is down) returns a new value on every call, so nothing is
        cached until it can.
        """
        ...

    async def publish(self) -> None:
        """Tell every cache the feed reaches that what it holds may be stale."""
        ...

    def record_stamp(self, store_pk: int, key: str) -> int | None:
        """A value that differs from every earlier one once the record changed anywhere the feed reaches;
        None when this feed does not follow records (nothing about them may be cached)."""
        ...

    def record_changed(self, store_pk: int, key: str) -> None:
        """Said by the engine right after a change to the record commits, before its writer hears of it; any
        thread may say it."""
        ...


class LocalFeed:
    """Changes seen by this process only: for one process on its own data."""

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._stamp = next(self._counter)
        self._records = [0] * RECORD_SLOTS

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def stamp(self) -> int:
        return self._stamp

    async def publish(self) -> None:
        self._stamp = next(self._counter)

    def record_stamp(self, store_pk: int, key: str) -> int | None:
        return self._records[record_slot(store_pk, key)]

    def record_changed(self, store_pk: int, key: str) -> None:
        self._records[record_slot(store_pk, key)] = next(self._counter)


class StampFeed:
    """Stamps shared by every process on one machine through small memory-mapped files: one for users,
    tokens, grants and stores (`path`), one with the record slots (`records_path`).

    Random stamps (not a counter) mean two processes publishing at once cannot write the same value back.
    Opening gives every record slot a new value: a process that died between a commit and moving its slot
    (a worker is restarted, so it opens again) leaves nothing cached stale in the others.
    """

    def __init__(self, path: Path, records_path: Path) -> None:
        self.path = path
        self.records_path = records_path
        self._map: mmap.mmap | None = None
        self._records: mmap.mmap | None = None

    @classmethod
    def of(cls, data_dir: Path) -> StampFeed:
        """The feed of every process on the data dir (the workers, the process that writes for them)."""
        return cls(data_dir / "generation", data_dir / "record-stamps")

    async def open(self) -> None:
        if self._map is not None:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._map = mapped_file(self.path, STAMP.size)
        # No fallback without it (a full disk): a process that could not move the stamps would leave the other
        # processes' caches stale, so it does not start.
        self._records = mapped_file(self.records_path, STAMP.size * RECORD_SLOTS)
        self._records[:] = os.urandom(STAMP.size * RECORD_SLOTS)

    async def close(self) -> None:
        for mapped in (self._map, self._records):
            if mapped is not None:
                mapped.close()
        self._map = self._records = None

    def stamp(self) -> int:
        if self._map is None:
            return secrets.randbits(64)
        stamp: int = STAMP.unpack_from(self._map)[0]
        return stamp

    async def publish(self) -> None:
        if self._map is not None:
            STAMP.pack_into(self._map, 0, secrets.randbits(64))

    def record_stamp(self, store_pk: int, key: str) -> int | None:
        records = self._records
        if records is None:
            return None
        stamp: int = STAMP.unpack_from(records, record_slot(store_pk, key) * STAMP.size)[0]
        return stamp

    def record_changed(self, store_pk: int, key: str) -> None:
        records = self._records
        if records is not None:
            STAMP.pack_into(records, record_slot(store_pk, key) * STAMP.size, random.getrandbits(64))


def mapped_file(path: Path, size: int) -> mmap.mmap:
    """A file of at least `size` bytes, mapped shared. Its blocks are allocated first: a write to a page of a
    sparse file on a full disk would kill the process (SIGBUS), where allocating raises ENOSPC here."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)
