"""Folders that belong to a live process, told by a lock held on them rather than by a process id.

Each process that writes into a data dir's blob folder keeps its unfinished files in a folder of its own
under blobs/tmp, and whoever opens the blob folder next removes what processes that are gone left there. A
process id in the folder's name cannot tell that: after a restart, in a container above all, the new
processes get the ids of the dead ones, whose leftovers then looked alive forever. So a process holds an
flock on its folder for as long as it lives (the kernel lets go when it dies, however it dies), and a folder
nobody holds is anybody's to remove.

A folder is held from the moment it bears its name: it is made under a hidden name, locked, and only then
renamed. Made and then locked under its own name, another process sweeping in between took it for a dead
one's and removed it, and this one went on to write into a folder that was gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

MAKE_TRIES = 100  # a sweep can remove the hidden folder before it is locked; it is made again


class OwnedFolder:
    """A private folder this process holds while it lives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def make(self) -> None:
        """Create the folder if it is missing, and hold it (again, if it was removed and made anew)."""
        if self._fd is not None and _same(self._fd, self.path):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(MAKE_TRIES):
            fd = _made_and_held(self.path)
            if fd is not None:
                self._let_go()
                self._fd = fd
                return
        raise OSError(f"{self.path} was removed each time it was made")

    def remove(self) -> None:
        self._let_go()
        shutil.rmtree(self.path, ignore_errors=True)

    def _let_go(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _made_and_held(path: Path) -> int | None:
    """A descriptor holding the folder `path`, made now under a hidden name and renamed there once held; None
    if a sweep removed the hidden folder first."""
    hidden = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))  # mode 0700
    try:
        fd = os.open(hidden, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        os.rename(hidden, path)  # replaces an empty folder of that name, left by a dead process
    except FileNotFoundError:  # the sweep removed it between the mkdir and the lock
        os.close(fd)
        return None
    except OSError:  # a folder of that name with files in it: a dead process's, removed and made anew
        os.close(fd)
        shutil.rmtree(hidden, ignore_errors=True)
        if held(path):
            raise OSError(f"{path} is held by another live process") from None
        shutil.rmtree(path, ignore_errors=True)
        return None
    return fd


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
