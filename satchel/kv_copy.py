"""`satchel kv cp`: a folder's files into a store, and a store's records into a folder.

Uploading takes only regular files directly in the folder and follows no link; downloading writes each record
through a temporary file and never outside the folder, skipping a key that cannot be a file name there. What
is skipped is returned with why, for `cp` to list.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import click

from satchel.crawlee_storage.files import Skip, async_chunks, not_a_file, open_file, write_all
from satchel.crawlee_storage.layout import CREATE, NAME_MAX, guess_type
from satchel.errors import InvalidRequest
from satchel.remote import Remote, RemoteError, resolve_store
from satchel.service.validation import check_key

PART = ".satchel-{}.part"  # a download in progress, renamed to its key when complete


def is_folder(argument: str) -> bool:
    return "/" in argument or os.sep in argument or argument in (".", "..")


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A byte count's progress bar on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        yield lambda _: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


async def upload(remote: Remote, folder: Path, store: str) -> tuple[int, list[str]]:
    store_id = await resolve_store(remote, store, create=True)
    root = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # as named: links and all
    try:
        files, skipped = _files(root)
        copied = 0
        with _progress(sum(size for _, size in files), f"{folder} -> {store}") as advance:
            for name, _ in files:
                try:
                    fd = open_file(root, name, 2**63)
                except Skip as skip:
                    skipped.append(f"{name}: {skip}")
                    continue
                try:
                    size = os.fstat(fd).st_size
                    await remote.put(store_id, name, guess_type(name), _body(fd, size, advance), size)
                    copied += 1
                except RemoteError as error:
                    if error.status in (401, 403, 404):  # the token or the store, not this record
                        raise
                    skipped.append(f"{name}: {error.message}")
                finally:
                    os.close(fd)
    finally:
        os.close(root)
    return copied, skipped


def _files(root: int) -> tuple[list[tuple[str, int]], list[str]]:
    """The regular files directly in the folder whose names are keys (name, size), and what else is there."""
    files: list[tuple[str, int]] = []
    skipped: list[str] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        mode = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(mode.st_mode):
            skipped.append(f"{entry.name}/: a folder; keys cannot hold '/', so only files directly inside go")
        elif not stat.S_ISREG(mode.st_mode):
            skipped.append(f"{entry.name}: {not_a_file(mode.st_mode)}")
        else:
            try:
                files.append((check_key(entry.name), mode.st_size))
            except InvalidRequest as error:
                skipped.append(f"{entry.name}: {error.message}")
    return files, skipped


def _body(fd: int, size: int, advance: Callable[[int], None]) -> Callable[[], AsyncIterator[bytes]]:
    """The file's bytes, as many as it had when opened, counted on the progress bar as they go."""

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in async_chunks(fd, size):
            advance(len(chunk))
            yield chunk

    return chunks


class FolderUnwritable(OSError):
    """No file can be made in the folder a download writes into (said once, naming the folder)."""


async def download(remote: Remote, store: str, folder: Path) -> tuple[int, list[str]]:
    store_id = await resolve_store(remote, store)
    items = [(item["key"], int(item["size"])) async for item in remote.keys(store_id)]
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - the CLI's own loop; once the store is found
    root = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # as named: links and all
    written: set[tuple[int, int]] = set()  # files made by this copy: a second key must not replace one
    skipped: list[str] = []
    try:
        with _progress(sum(size for _, size in items), f"{store} -> {folder}") as advance:
            for key, _ in items:
                problem = _unsafe(key) or await _fetch(
                    remote, store_id, key, root, written=written, advance=advance
                )
                if problem:
                    skipped.append(f"{key}: {problem}")
    except FolderUnwritable as error:
        raise OSError(error.errno, error.strerror, str(folder)) from None
    finally:
        os.close(root)
    return len(items) - len(skipped), skipped


def _unsafe(key: str) -> str | None:
    """Why the key cannot be a file name directly in the folder (None: it can). Satchel's keys always can but
    for their length; another server's may not, and must not reach outside the folder."""
    if "/" in key or "\0" in key or os.sep in key or key in ("", ".", ".."):
        return "not a file name (it would leave the folder)"
    if len(key.encode()) > NAME_MAX:
        return f"longer than a file name may be ({NAME_MAX} bytes)"
    return None


async def _fetch(
    remote: Remote,
    store_id: str,
    key: str,
    root: int,
    *,
    written: set[tuple[int, int]],
    advance: Callable[[int], None],
) -> str | None:
    """Write one record into the folder under its key; why not, if it was not."""
    part = PART.format(secrets.token_hex(8))
    try:
        fd = os.open(part, CREATE, 0o666, dir_fd=root)
    except OSError as error:  # no file can be made in the folder: the whole copy fails, naming the folder
        raise FolderUnwritable(error.errno, error.strerror) from error
    try:
        try:
            async with remote.record(store_id, key) as response:
                seen = 0
                async for chunk in response.aiter_bytes():
                    write_all(fd, chunk)
                    advance(response.num_bytes_downloaded - seen)
                    seen = response.num_bytes_downloaded
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            there = os.stat(key, dir_fd=root, follow_symlinks=False)
            if (there.st_dev, there.st_ino) in written:
                return "its file name is another key's here (a folder that ignores case?)"
        os.replace(part, key, src_dir_fd=root, dst_dir_fd=root)
        made = os.stat(key, dir_fd=root, follow_symlinks=False)
        written.add((made.st_dev, made.st_ino))
        return None
    except RemoteError as error:
        if error.status in (401, 403):
            raise
        return "deleted since it was listed" if error.status == 404 else error.message
    except OSError as error:
        return f"cannot be written ({error.strerror})"
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part, dir_fd=root)
