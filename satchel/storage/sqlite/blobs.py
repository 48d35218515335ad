"""The blob folder: large record bodies as files, written under a temporary name and renamed into place.

A blob is never changed once named; a new value gets a new file, so a reader holding the old file's name or
descriptor always sees one whole value.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

from satchel.errors import StorageFull, TooLarge


def _is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


class Spooled:
    """A body read off the wire: inline bytes when small, else a finished temporary file."""

    __slots__ = ("data", "size", "tmp")

    def __init__(self, data: bytes | None, tmp: Path | None, size: int) -> None:
        self.data = data
        self.tmp = tmp
        self.size = size


class BlobDir:
    def __init__(self, root: Path, *, fsync: bool) -> None:
        self.root = root
        self.fsync = fsync
        # One temporary folder per process, so a restart can clear what a dead process left behind.
        self.tmp_root = root / "tmp"
        self.tmp = self.tmp_root / f"{os.getpid()}-{secrets.token_hex(4)}"

    def prepare(self) -> None:
        """Clear what dead processes left in the temporary folder, then make this process's own."""
        if self.tmp_root.exists():
            for folder in self.tmp_root.iterdir():
                pid = folder.name.split("-", 1)[0]
                if folder != self.tmp and pid.isdigit() and not _alive(int(pid)):
                    shutil.rmtree(folder, ignore_errors=True)
        try:
            self._make_tmp()
        except OSError as exc:
            if not _is_disk_full(exc):
                raise
            # A full disk must not keep the server from starting; the folder is made when first needed.

    def _make_tmp(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)

    def _create_tmp(self) -> tuple[Path, int]:
        tmp = self.tmp / secrets.token_hex(16)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            return tmp, os.open(tmp, flags, 0o600)
        except FileNotFoundError:
            self._make_tmp()
            return tmp, os.open(tmp, flags, 0o600)

    def path(self, name: str) -> Path:
        return self.root / name[:2] / name

    async def spool(self, chunks: AsyncIterator[bytes], *, inline_max: int, max_bytes: int) -> Spooled:
        """Read a body to its end: into memory up to inline_max bytes, past that into a temporary file."""
        parts: list[bytes] = []
        size = 0
        fd = -1
        tmp: Path | None = None
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"The record is larger than the limit of {max_bytes} bytes.")
                if fd < 0:
                    parts.append(chunk)
                    if size > inline_max:
                        tmp, fd = self._create_tmp()
                        _write_all(fd, b"".join(parts))
                        parts.clear()
                else:
                    _write_all(fd, chunk)
            if fd < 0:
                return Spooled(b"".join(parts), None, size)
            if self.fsync:
                await asyncio.to_thread(os.fsync, fd)
            os.close(fd)
            fd = -1
            return Spooled(None, tmp, size)
        except OSError as exc:
            if _is_disk_full(exc):
                raise StorageFull("The server's disk is full; the record was not stored.") from exc
            raise
        finally:
            if fd >= 0:
                os.close(fd)
                if tmp is not None:
                    tmp.unlink(missing_ok=True)

    def discard(self, spooled: Spooled) -> None:
        if spooled.tmp is not None:
            spooled.tmp.unlink(missing_ok=True)

    def commit(self, spooled: Spooled) -> str:
        """Give a spooled temporary file its final name (atomic rename) and return that name."""
        assert spooled.tmp is not None
        name = spooled.tmp.name
        final = self.path(name)
        try:
            final.parent.mkdir(exist_ok=True)  # a new folder takes a block of its own
            os.replace(spooled.tmp, final)
            if self.fsync:
                _fsync_dir(final.parent)
        except OSError as exc:
            if _is_disk_full(exc):
                raise StorageFull("The server's disk is full; the record was not stored.") from exc
            raise
        return name

    def unlink(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def names_older_than(self, seconds: float) -> list[str]:
        """Every blob file not touched for that long (for the orphan scan after a crash)."""
        cutoff = time.time() - seconds
        found = []
        for sub in self.root.iterdir():
            if sub == self.tmp_root or not sub.is_dir():
                continue
            for entry in os.scandir(sub):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < cutoff:
                        found.append(entry.name)
        return found


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
