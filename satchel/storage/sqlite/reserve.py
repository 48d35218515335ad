"""Room held back on the data dir's filesystem, so a full disk can still be emptied through the API.

On a full disk SQLite cannot even delete: a delete appends pages to the WAL, the WAL cannot grow, and a
checkpoint cannot make room because it has to write too; a restart fails the same way. So the engine keeps a
preallocated file (a "ballast", as CockroachDB calls its own), gives it up the moment a delete or its own
start finds the disk full, and takes the room back once the disk has plenty free again.
"""

from __future__ import annotations

import contextlib
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
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, self.size)
        except (
            OSError
        ):  # no room after all, or a filesystem without fallocate: hold nothing rather than a part
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return False
        finally:
            os.close(fd)
        return True

    def release(self, part: int | None = None) -> bool:
        """Give room back to the filesystem, all of it or `part` bytes; True if this call freed some."""
        held = self.held()
        if part is not None and 0 < part < held:
            with contextlib.suppress(FileNotFoundError):
                os.truncate(self.path, held - part)
                log.warning(
                    "the disk under %s is full: released %d bytes of the reserve", self.path.parent, part
                )
                return True
            return False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
            if held:
                log.warning("the disk under %s is full: released the %d-byte reserve", self.path.parent, held)
                return True
        return False
