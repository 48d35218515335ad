"""The change feed: how caches above the engines learn that users, tokens, grants or stores changed.

A cache is good while the feed's stamp is the one it was filled under. Publishing changes the stamp for every
process the transport reaches: this process alone (LocalFeed), every process on one data dir (StampFeed, a
memory-mapped file), or every node of a deployment (PostgreSQL LISTEN/NOTIFY, postgres/feed.py). Reading the
stamp costs a memory load, so every request can check it.
"""

from __future__ import annotations

import itertools
import mmap
import os
import secrets
import struct
from pathlib import Path
from typing import Protocol

STAMP = struct.Struct("<Q")


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


class LocalFeed:
    """Changes seen by this process only: for one process on its own data."""

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._stamp = next(self._counter)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def stamp(self) -> int:
        return self._stamp

    async def publish(self) -> None:
        self._stamp = next(self._counter)


class StampFeed:
    """A stamp shared by every process on one machine through a small memory-mapped file.

    Random stamps (not a counter) mean two processes publishing at once cannot write the same value back.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None

    async def open(self) -> None:
        if self._map is not None:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < STAMP.size:
                os.ftruncate(fd, STAMP.size)
            self._map = mmap.mmap(fd, STAMP.size)
        finally:
            os.close(fd)

    async def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def stamp(self) -> int:
        if self._map is None:
            return secrets.randbits(64)
        stamp: int = STAMP.unpack_from(self._map)[0]
        return stamp

    async def publish(self) -> None:
        if self._map is not None:
            STAMP.pack_into(self._map, 0, secrets.randbits(64))
