"""Writing a store out as Crawlee keeps it: only files it creates, in a folder that becomes the store's folder
once whole.

The store folder is written under another name beside it (`.NAME.partial-XXXXXXXX`) and renamed to NAME when
every record is in: an export stopped partway, by Ctrl-C, a kill, a crash or a full disk, leaves no store
folder that looks finished, and no folder in the way of the next export. An export that fails removes its
partial folder itself; one that was killed leaves it, held no longer, and the next export of that store into
that folder removes it. Each export holds an flock on its partial folder while it runs (the kernel lets go
however it ends), so one running beside it is left alone. Nothing is fsynced: as with `satchel kv cp`, this
guards against the command stopping, not the machine.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from satchel.crawlee_storage.files import write_all
from satchel.crawlee_storage.layout import (
    CREATE,
    DIRECTORY,
    METADATA,
    OWN_PREFIX,
    PARTIAL,
    STORES_FOLDER,
    file_names,
    partial_name,
)
from satchel.crawlee_storage.stores import Stores
from satchel.errors import SatchelError


@dataclass(slots=True)
class Exported:
    folder: Path
    records: int
    own_names: list[str]  # keys written under Satchel's own names: Crawlee does not read them


async def export_store(source: Stores, ref: str, path: Path) -> Exported:
    """Write a store into `path/key_value_stores/NAME` as Crawlee keeps it locally.

    The store folder must be new or empty; it is written whole beside it, then renamed into place. Every
    file is created, never opened if it exists, and no link is followed below `path`. On failure what was
    written is removed.
    """
    store = await source.find(ref)
    name = store.name or store.id
    folder_path = path / STORES_FOLDER / name
    try:
        path.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - the CLI's own loop; the folder as named
        root = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            stores = _make_dir(root, STORES_FOLDER, path / STORES_FOLDER)
        finally:
            os.close(root)
    except OSError as exc:
        raise SatchelError(f"{path / STORES_FOLDER} could not be made ({exc.strerror}).") from exc
    try:
        partial = partial_name(name)
        try:
            _refuse_filled(stores, name, folder_path)
            _remove_interrupted(stores, name)
            folder = _new_held_folder(stores, partial)
        except OSError as exc:
            raise SatchelError(f"{folder_path} could not be made ({exc.strerror}).") from exc
        try:
            writer = _Writer(folder)
            records, own = await _write_records(source, store.id, writer)
            meta = {
                "id": store.id,
                "name": store.name,
                "createdAt": store.created_at,
                "modifiedAt": store.modified_at,
                "accessedAt": store.accessed_at,
            }
            writer.write(METADATA, [json.dumps(meta, indent=2).encode()])
            _move_into_place(stores, partial, name, folder_path)
        except BaseException as exc:
            shutil.rmtree(partial, dir_fd=stores, ignore_errors=True)
            if isinstance(exc, OSError):  # a full disk, say: told as the CLI tells errors, not as a traceback
                raise SatchelError(f"{folder_path} could not be written ({exc.strerror}).") from exc
            raise
        finally:
            os.close(folder)  # and with it the lock
    finally:
        os.close(stores)
    return Exported(folder_path, records, own)


async def _write_records(source: Stores, store_id: str, writer: _Writer) -> tuple[int, list[str]]:
    written = 0
    own: list[str] = []
    async for record in source.records(store_id):
        body, meta = file_names(record.key)
        if body.startswith(OWN_PREFIX):
            own.append(record.key)
        fd = writer.create(body)
        size = 0
        try:
            async for chunk in record.chunks:
                write_all(fd, chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        data = {"key": record.key, "contentType": record.content_type, "size": size}
        writer.write(meta, [json.dumps(data).encode()])
        written += 1
    return written, own


class _Writer:
    """Creates files in one folder, never over an existing name nor through a link."""

    def __init__(self, folder: int) -> None:
        self.folder = folder

    def create(self, name: str) -> int:
        try:
            return os.open(name, CREATE, 0o666, dir_fd=self.folder)
        except FileExistsError as exc:
            raise SatchelError(f"{name} already exists in the export folder.", "invalid-request") from exc

    def write(self, name: str, chunks: list[bytes]) -> None:
        fd = self.create(name)
        try:
            for chunk in chunks:
                write_all(fd, chunk)
        finally:
            os.close(fd)


def _make_dir(parent: int, name: str, shown: Path) -> int:
    """A folder inside `parent`, made if missing, opened without following a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, dir_fd=parent)
    try:
        return os.open(name, DIRECTORY, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _not_a_folder(shown) from exc
        raise


def _refuse_filled(parent: int, name: str, shown: Path) -> None:
    """Refuse a store folder that holds files (a finished export, say), is a link or is a file; one missing
    or empty is replaced."""
    try:
        fd = os.open(name, DIRECTORY, dir_fd=parent)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _not_a_folder(shown) from exc
        raise
    try:
        if any(True for _ in os.scandir(fd)):
            raise _filled(shown)
    finally:
        os.close(fd)


def _remove_interrupted(parent: int, name: str) -> None:
    """Remove the partial folders of this store's exports that no running export holds: those of exports
    that were killed."""
    for entry in [e.name for e in os.scandir(parent)]:  # listed whole before any is removed
        found = PARTIAL.fullmatch(entry)
        if found is None or found["store"] != name:
            continue
        try:
            fd = os.open(entry, DIRECTORY, dir_fd=parent)
        except OSError:
            continue  # gone meanwhile, or a link or a file: no export's
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # an export running now
        else:
            shutil.rmtree(entry, dir_fd=parent, ignore_errors=True)
        finally:
            os.close(fd)


def _new_held_folder(parent: int, name: str) -> int:
    """Make the folder (new: the name is this export's own) and hold it for as long as it stays open."""
    os.mkdir(name, dir_fd=parent)
    fd = os.open(name, DIRECTORY, dir_fd=parent)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _move_into_place(parent: int, partial: str, name: str, shown: Path) -> None:
    """Rename the finished folder to the store's name, over nothing or an empty folder (rename(2) replaces
    an empty directory, and refuses one with files or anything else)."""
    try:
        os.rename(partial, name, src_dir_fd=parent, dst_dir_fd=parent)
    except OSError as exc:  # made or filled while the export ran
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise _filled(shown) from exc
        if exc.errno in (errno.ENOTDIR, errno.EISDIR):
            raise _not_a_folder(shown) from exc
        raise


def _filled(shown: Path) -> SatchelError:
    return SatchelError(f"{shown} already holds files; export into a new or empty folder.", "invalid-request")


def _not_a_folder(shown: Path) -> SatchelError:
    return SatchelError(f"{shown} is not a folder (a link or a file); export follows no link.")
