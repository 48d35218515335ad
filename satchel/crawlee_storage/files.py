"""Files in a folder someone else may control: opened without following a link, without waiting on a FIFO,
and no larger than the caller allows. Shared by `satchel import` and `satchel kv cp`."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import AsyncIterator, Iterator

from satchel.crawlee_storage.layout import CHUNK, DIRECTORY, READ


class Skip(Exception):
    """A file or folder that is not taken, and why."""


def open_dir(parent: int, name: str) -> int:
    """A folder inside `parent`, opened without following a link."""
    try:
        return os.open(name, DIRECTORY, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
            raise Skip(not_a_file(mode) if not stat.S_ISREG(mode) else "a file, not a store folder") from exc
        raise


def open_file(folder: int, name: str, limit: int) -> int:
    """A regular file inside the folder, opened without following a link, no larger than `limit` bytes."""
    try:
        fd = os.open(name, READ, dir_fd=folder)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Skip("a link; links are not followed") from exc
        raise Skip(f"cannot be read ({exc.strerror})") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Skip(not_a_file(info.st_mode))
        raise Skip(f"{info.st_size} bytes, larger than the limit of {limit} bytes")
    os.set_blocking(fd, True)
    return fd


def not_a_file(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a link; links are not followed"
    if stat.S_ISDIR(mode):
        return "a folder; only files directly in a store folder are records"
    return "not a regular file (a FIFO, device or socket)"


def chunks(fd: int, limit: int = 2**63) -> Iterator[bytes]:
    """The file's bytes, up to `limit` (a file that grows while it is read stops there)."""
    left = limit
    while left > 0 and (chunk := os.read(fd, min(CHUNK, left))):
        left -= len(chunk)
        yield chunk


async def async_chunks(fd: int, limit: int = 2**63, *, rewind: bool = True) -> AsyncIterator[bytes]:
    """The file's bytes, up to `limit`, from its start (so that a retry sends them again) unless it is a pipe
    (`rewind` false). Without a limit, the record's own stops a file that grows while it is read (the store
    refuses past it)."""
    if rewind:
        os.lseek(fd, 0, os.SEEK_SET)
    for chunk in chunks(fd, limit):
        yield chunk


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
