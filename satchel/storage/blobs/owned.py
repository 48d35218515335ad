"""Folders that belong to a live process, told by a lock held on them rather than by a process id.

Each process that writes into a data dir's blob folder keeps its unfinished files in a folder of its own
under blobs/tmp, and whoever opens the blob folder next removes what processes that are gone left there. A
process id in the folder's name cannot tell that: after a restart, in a container above all, the new
processes get the ids of the dead ones, whose leftovers then looked alive forever. So a process holds an
flock on its folder for as long as it lives (the kernel lets go when it dies, however it dies), and a folder
nobody holds is anybody's to remove.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path


class OwnedFolder:
    """A private folder this process holds while it lives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def make(self) -> None:
        """Create the folder if it is missing, and hold it (again, if it was removed and made anew)."""
        if self._fd is not None and _same(self._fd, self.path):
            return
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._let_go()
        self._fd = fd

    def remove(self) -> None:
        self._let_go()
        shutil.rmtree(self.path, ignore_errors=True)

    def _let_go(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _same(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), path.stat())
    except FileNotFoundError:
        return False


def held(folder: Path) -> bool:
    """Whether a live process holds the folder, this one included."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False  # gone, or not a folder: nobody's
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and with it the lock, if it was taken
    return False


def remove_unheld(root: Path, *, keep: Path | None = None) -> None:
    """Remove the folders under root that no live process holds (but `keep`)."""
    with contextlib.suppress(FileNotFoundError):
        for folder in root.iterdir():
            if folder != keep and folder.is_dir() and not held(folder):
                shutil.rmtree(folder, ignore_errors=True)
