"""Room held back on the data dir's filesystem, so a full disk can still be emptied through the API.

On a full disk SQLite cannot even delete: a delete appends pages to the WAL, the WAL cannot grow, and a
checkpoint cannot make room because it has to write too; a restart fails the same way. So the engine keeps a
preallocated file (a "ballast", as CockroachDB calls its own), gives it up the moment a delete or its own
start finds the disk full, and takes the room back once the disk has plenty free again.

Between the two the reserve is "short", and only writes that make room are taken: the room it gave is for
deletes, and uploads coming in beside them took it all, after which deletes failed again, a restart too,
until room was made outside Satchel. Short is read off the file, which every process of the server shares
(a reserve file smaller than its size), by every write that brings data in. A filesystem that cannot
preallocate keeps no file, and no write is ever held back for it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class Reserve:
    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    def held(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def short(self) -> bool:
        """Whether the reserve was given up for a full disk, in whole or in part, and not yet taken back.

        Looked up afresh each time (a stat, about a microsecond against a write's hundred): the process that
        gives the reserve up is the one that commits, and uploads let through on a look half a second old
        took 15 of its 16 MiB in 100 ms."""
        if self.size <= 0:
            return False
        try:
            return self.path.stat().st_size < self.size
        except FileNotFoundError:  # never held (a filesystem without preallocation)
            return False

    def restore(self) -> bool:
        """Hold the reserve again if the disk has room for it twice over; True when it is held."""
        if self.size <= 0:
            return False
        held = self.held()
        if held >= self.size:
            return True
        st = os.statvfs(self.path.parent)
        if st.f_bavail * st.f_frsize < 2 * (self.size - held):
            return False
        was_short = self.path.exists()  # given up before, rather than never held
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, self.size)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                # A filesystem without fallocate: hold nothing, and hold no write back for it.
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            else:  # no room after all: short, as it was, until the next try
                os.ftruncate(fd, held)
            return False
        finally:
            os.close(fd)
        if was_short:
            log.warning("the disk under %s has room again: writes are taken", self.path.parent)
        return True

    def release(self, part: int | None = None) -> bool:
        """Give room back to the filesystem, all of it or `part` bytes; True if this call freed some. The
        file stays, emptied, to say the reserve is short."""
        held = self.held()
        if held == 0:
            return False
        keep = held - part if part is not None and 0 < part < held else 0
        try:
            os.truncate(self.path, keep)
        except FileNotFoundError:
            return False
        log.warning(
            "the disk under %s is full: released %d bytes of the reserve; until it is held again, only"
            " deletes are taken",
            self.path.parent,
            held - keep,
        )
        return True
