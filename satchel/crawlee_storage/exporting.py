"""Writing a store out as Crawlee keeps it: only files it creates, in a folder it made or found empty."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path

from satchel.crawlee_storage.files import write_all
from satchel.crawlee_storage.layout import CREATE, DIRECTORY, METADATA, OWN_PREFIX, STORES_FOLDER, file_names
from satchel.crawlee_storage.stores import Stores
from satchel.errors import SatchelError


@dataclass(slots=True)
class Exported:
    folder: Path
    records: int
    own_names: list[str]  # keys written under Satchel's own names: Crawlee does not read them


async def export_store(source: Stores, ref: str, path: Path) -> Exported:
    """Write a store into `path/key_value_stores/NAME` as Crawlee keeps it locally.

    The store folder must be new or empty; every file is created, never opened if it exists, and no link is
    followed below `path`. On failure what was written is removed.
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
        try:
            made = _new_folder(stores, name, folder_path)
            folder = _make_dir(stores, name, folder_path)
        except OSError as exc:
            raise SatchelError(f"{folder_path} could not be made ({exc.strerror}).") from exc
        writer = _Writer(folder)
        try:
            records, own = await _write_records(source, store.id, writer)
            meta = {
                "id": store.id,
                "name": store.name,
                "createdAt": store.created_at,
                "modifiedAt": store.modified_at,
                "accessedAt": store.accessed_at,
            }
            writer.write(METADATA, [json.dumps(meta, indent=2).encode()])
        except BaseException as exc:
            writer.remove_all()
            if made:
                with contextlib.suppress(OSError):
                    os.rmdir(name, dir_fd=stores)
            if isinstance(exc, OSError):  # a full disk, say: told as the CLI tells errors, not as a traceback
                raise SatchelError(f"{folder_path} could not be written ({exc.strerror}).") from exc
            raise
        finally:
            os.close(folder)
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
    """Creates files in one folder, never over an existing name nor through a link, and can take them back."""

    def __init__(self, folder: int) -> None:
        self.folder = folder
        self.created: list[str] = []

    def create(self, name: str) -> int:
        try:
            fd = os.open(name, CREATE, 0o666, dir_fd=self.folder)
        except FileExistsError as exc:
            raise SatchelError(f"{name} already exists in the export folder.", "invalid-request") from exc
        self.created.append(name)
        return fd

    def write(self, name: str, chunks: list[bytes]) -> None:
        fd = self.create(name)
        try:
            for chunk in chunks:
                write_all(fd, chunk)
        finally:
            os.close(fd)

    def remove_all(self) -> None:
        for name in self.created:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=self.folder)


def _make_dir(parent: int, name: str, shown: Path) -> int:
    """A folder inside `parent`, made if missing, opened without following a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, dir_fd=parent)
    try:
        return os.open(name, DIRECTORY, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise SatchelError(
                f"{shown} is not a folder (a link or a file); export follows no link."
            ) from exc
        raise


def _new_folder(parent: int, name: str, shown: Path) -> bool:
    """Make the store folder: True if made, False if it was there empty; one holding files is refused."""
    try:
        os.mkdir(name, dir_fd=parent)
    except FileExistsError:
        fd = _make_dir(parent, name, shown)
        try:
            if any(True for _ in os.scandir(fd)):
                raise SatchelError(
                    f"{shown} already holds files; export into a new or empty folder.", "invalid-request"
                ) from None
        finally:
            os.close(fd)
        return False
    return True
