"""Blobs as files in a local folder, each written under a temporary name, then renamed into place.

The final rename is atomic, so a blob's name only ever shows a whole body. A temporary folder per process,
held while the process lives (owned.py), means a restart can clear what a dead process left half-written.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from satchel.errors import SatchelError, StorageFull, Unavailable
from satchel.logs import Occasional
from satchel.storage.blobs.base import MARK_NAME, BlobMissing
from satchel.storage.blobs.owned import OwnedFolder, remove_unheld
from satchel.storage.durable import fsync_path

CHUNK = 256 * 1024
# A folder the server may not write to (its permissions changed, a file system remounted read-only): the
# operator's to mend, told in the log at most this often, and a 503 to each write meanwhile.
UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
WARN_EVERY_SECONDS = 60.0
_unwritable_folder = Occasional(logging.getLogger(__name__), WARN_EVERY_SECONDS)


def _is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _full() -> StorageFull:
    return StorageFull("The server's disk is full; the record was not stored.")


def _unwritable(exc: OSError) -> Unavailable:
    _unwritable_folder.log(
        logging.ERROR, "cannot write to the blob folder: %s (large records fail until it is mended)", exc
    )
    return Unavailable(f"The server cannot write to its storage ({exc.strerror}); the record was not stored.")


class FileBlobs:
    def __init__(self, root: Path, *, fsync: bool) -> None:
        self.root = root
        self.fsync = fsync
        self.tmp_root = root / "tmp"
        self.tmp = self.tmp_root / f"{os.getpid()}-{secrets.token_hex(4)}"
        self._own = OwnedFolder(self.tmp)

    async def open(self) -> None:
        """Clear what dead processes left in the temporary folder, then make this process's own."""
        remove_unheld(self.tmp_root, keep=self.tmp)
        try:
            self._own.make()
        except OSError as exc:
            if not _is_disk_full(exc):
                raise
            # A full disk must not keep the server from starting; the folder is made when first needed.

    async def close(self) -> None:
        self._own.remove()

    def path(self, name: str) -> Path:
        return self.root / name[:2] / name

    def local_path(self, name: str) -> Path | None:
        return self.path(name)

    def _create_tmp(self) -> tuple[Path, int]:
        tmp = self.tmp / secrets.token_hex(16)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            return tmp, os.open(tmp, flags, 0o600)
        except FileNotFoundError:
            self._own.make()
            return tmp, os.open(tmp, flags, 0o600)

    async def put(self, name: str, chunks: AsyncIterable[bytes]) -> int:
        size = 0
        fd = -1
        tmp: Path | None = None
        try:
            tmp, fd = self._create_tmp()
            async for chunk in chunks:
                size += len(chunk)
                _write_all(fd, chunk)
            if self.fsync:
                await asyncio.to_thread(os.fsync, fd)
            os.close(fd)
            fd = -1
            final = self.path(name)
            final.parent.mkdir(mode=0o700, exist_ok=True)  # a new folder takes a block of its own
            os.replace(tmp, final)
            tmp = None
            if self.fsync:
                fsync_path(final.parent)
            return size
        except OSError as exc:
            if _is_disk_full(exc):
                raise _full() from exc
            if exc.errno in UNWRITABLE:
                raise _unwritable(exc) from exc
            raise
        finally:
            if fd >= 0:
                os.close(fd)
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    async def read(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            f = open(self.path(name), "rb")  # noqa: SIM115, ASYNC230 - one open(); closed below, across awaits
        except FileNotFoundError as exc:
            raise BlobMissing(name) from exc
        with f:
            if start:
                f.seek(start)
            left = -1 if end is None else end - start  # -1: to the end of the file
            # A first chunk read here, on the loop, keeps small blobs as cheap as one read; the rest off it.
            chunk = f.read(CHUNK if left < 0 else min(CHUNK, left))
            while chunk:
                yield chunk
                if left >= 0:
                    left -= len(chunk)
                    if left <= 0:
                        return
                chunk = await asyncio.to_thread(f.read, CHUNK if left < 0 else min(CHUNK, left))

    async def delete(self, names: list[str]) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                self.path(name).unlink()

    async def forget_made(self) -> None:
        pass  # the blob folder is part of the data dir, which the node keeps for its other files

    async def mark(self) -> str | None:
        try:
            return (self.root / MARK_NAME).read_text().strip()
        except FileNotFoundError:
            return None

    async def write_mark(self, mark: str) -> None:
        # Written once per deployment: flushed to disk whatever the durability setting, then renamed in.
        final = self.root / MARK_NAME
        try:
            tmp, fd = self._create_tmp()
            try:
                try:
                    _write_all(fd, f"{mark}\n".encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
            fsync_path(self.root)
        except OSError as exc:
            raise SatchelError(f"Cannot write {final}: {exc.strerror or exc}.") from exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
