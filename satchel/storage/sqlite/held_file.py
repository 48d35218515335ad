"""The database file's one descriptor outside SQLite, shared by every Database on the file in this process.

Closing any descriptor of a file drops every POSIX lock the process holds on that file, SQLite's included.
Another process that then closes its last connection takes itself for the file's last user: it checkpoints
and deletes the WAL under this process's connections, whose reads fail from then on ("database disk image is
malformed") and whose writes go to a deleted file. So Satchel never opens and closes the database file beside
SQLite's connections: the descriptor it syncs the file through is opened once, and closed only when no
Database in this process has the file open any more (each closes its connections first).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_lock = threading.Lock()
_held: dict[tuple[int, int], list[int]] = {}  # (device, inode) -> [descriptor, Databases using it]


class HeldFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: tuple[int, int] | None = None

    def open(self) -> None:
        if self._key is not None:
            return
        found = os.stat(self.path)  # not opened to learn which file it is: closing that would drop the locks
        key = (found.st_dev, found.st_ino)
        with _lock:
            held = _held.get(key)
            if held is None:
                held = _held[key] = [os.open(self.path, os.O_RDONLY | os.O_CLOEXEC), 0]
            held[1] += 1
        self._key = key

    def sync(self) -> None:
        """fsync the database file (nothing once closed)."""
        with _lock:  # so that no close() of another Database closes it meanwhile
            held = _held.get(self._key) if self._key is not None else None
            if held is not None:
                os.fsync(held[0])

    def close(self) -> None:
        """Called once this Database's connections are closed."""
        key, self._key = self._key, None
        if key is None:
            return
        with _lock:
            held = _held[key]
            held[1] -= 1
            if held[1] == 0:
                del _held[key]
                os.close(held[0])
