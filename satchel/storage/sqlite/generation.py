"""A change stamp shared by every process on one data dir, for caches of users, tokens and stores.

Any change to those rows writes a fresh random stamp into a small memory-mapped file; a cache is good while
the stamp it was filled under is still there. Reading it costs a memory load, so every request can check it.
Random stamps (not a counter) mean two processes bumping at once cannot write the same value back.
"""

from __future__ import annotations

import mmap
import os
import secrets
import struct
from pathlib import Path

STAMP = struct.Struct("<Q")


class Generation:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None

    def open(self) -> None:
        if self._map is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < STAMP.size:
                os.ftruncate(fd, STAMP.size)
            self._map = mmap.mmap(fd, STAMP.size)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def read(self) -> int:
        assert self._map is not None
        stamp: int = STAMP.unpack_from(self._map)[0]
        return stamp

    def bump(self) -> None:
        assert self._map is not None
        STAMP.pack_into(self._map, 0, secrets.randbits(64))
