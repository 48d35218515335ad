"""Reading Crawlee's local storage folders into stores: only regular files directly inside, opened safely."""

from __future__ import annotations

import errno
import json
import mimetypes
import os
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from satchel.crawlee_storage.layout import (
    CHUNK,
    DIRECTORY,
    MAX_METADATA_BYTES,
    METADATA,
    OWN_METADATA,
    OWN_PREFIX,
    READ,
    RECORD_METADATA,
    STORES_FOLDER,
)
from satchel.errors import SatchelError
from satchel.service import Caller, Services
from satchel.service.validation import check_name


class Skip(Exception):
    """A file or folder that is not imported, and why."""


@dataclass(slots=True)
class FolderRecord:
    key: str
    content_type: str
    name: str  # the body's file name in the store folder


@dataclass(slots=True)
class Report:
    stores: dict[str, int] = field(default_factory=dict)  # store name -> records written
    skipped: list[str] = field(default_factory=list)  # what could not be taken, and why


async def import_folders(
    services: Services, caller: Caller, path: Path, *, store_name: str | None = None
) -> Report:
    """Copy every store folder under `path` into the caller's named stores (created when missing).

    `path` itself is opened as given (links included: the caller named it); nothing under it is followed.
    """
    report = Report()
    try:
        root = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise SatchelError(f"{path} cannot be read ({exc.strerror}).", "invalid-request") from exc
    try:
        folders = _store_folders(root, path, report)
        try:
            if store_name is not None and len(folders) != 1:
                raise SatchelError(
                    f"{path} holds {len(folders)} stores; --store names one.", "invalid-request"
                )
            for shown, fd in folders:
                target = (shown, store_name or shown.name)
                try:
                    await _import_folder(services, caller, fd, target, report)
                except OSError as exc:
                    report.skipped.append(f"{shown}: cannot be read ({exc.strerror})")
        finally:
            for _, fd in folders:
                if fd != root:
                    os.close(fd)
    finally:
        os.close(root)
    return report


def _store_folders(root: int, path: Path, report: Report) -> list[tuple[Path, int]]:
    """The store folders (shown path, open descriptor) in a Crawlee storage folder, in its
    `key_value_stores`, or the one store folder `path` is."""
    try:
        mode: int | None = os.stat(STORES_FOLDER, dir_fd=root, follow_symlinks=False).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISLNK(mode):
        report.skipped.append(f"{path / STORES_FOLDER}: {_not_a_file(mode)}")
        return []
    if mode is not None and stat.S_ISDIR(mode):
        stores, shown = _open_dir(root, STORES_FOLDER), path / STORES_FOLDER
    elif path.name == STORES_FOLDER:
        stores, shown = root, path
    else:  # a store folder (which may hold a record called key_value_stores)
        return [(path, root)]
    folders: list[tuple[Path, int]] = []
    try:
        for entry in sorted(os.scandir(stores), key=lambda e: e.name):
            try:
                folders.append((shown / entry.name, _open_dir(stores, entry.name)))
            except (Skip, OSError) as skip:
                report.skipped.append(f"{shown / entry.name}: {_reason(skip)}")
    finally:
        if stores != root:
            os.close(stores)
    return folders


async def _import_folder(
    services: Services, caller: Caller, folder: int, target: tuple[Path, str], report: Report
) -> None:
    """Copy one open store folder (shown as target[0]) into the store named target[1]."""
    shown, name = target
    try:
        check_name(name)
    except SatchelError as error:
        report.skipped.append(f"{shown}: {error.message} Give it another name with --store.")
        return
    store, _ = await services.stores.get_or_create(caller, name, None)
    records, problems = read_folder(folder)
    report.skipped += [f"{shown}/{problem}" for problem in problems]
    limit = services.records.max_record_bytes
    written = 0
    for record in records:
        try:
            fd = _open_file(folder, record.name, limit)
        except Skip as skip:
            report.skipped.append(f"{shown / record.name}: {skip}")
            continue
        try:
            await services.records.put(
                caller,
                store.id,
                record.key,
                content_type=record.content_type,
                content_encoding=None,
                chunks=_read_chunks(fd),
            )
        except SatchelError as error:
            report.skipped.append(f"{shown / record.name}: {error.message}")
            continue
        finally:
            os.close(fd)
        written += 1
    report.stores[name] = written


def read_folder(folder: int) -> tuple[list[FolderRecord], list[str]]:
    """The records an open store folder holds, in either Crawlee's layout or Satchel's own names, and what
    else it holds, with why it is not a record."""
    files: set[str] = set()
    problems: list[str] = []
    for entry in os.scandir(folder):
        kind = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISREG(kind):
            files.add(entry.name)
        else:
            problems.append(f"{entry.name}: {_not_a_file(kind)}")
    records: dict[str, FolderRecord] = {}
    metadata = {name: stem for name in files if (stem := _stem(name)) is not None}
    used = {METADATA, *metadata}  # a body is never a metadata file
    for meta_name, stem in sorted(metadata.items()):
        try:
            key, content_type, extension = _read_metadata(folder, meta_name)
        except Skip as skip:
            problems.append(f"{meta_name}: {skip}")
            continue
        # Only names the folder lists as regular files: a name from the metadata is never a path.
        candidates = [stem, f"{key}.{extension}" if extension else key]
        body = next((c for c in candidates if c in files and c not in used), None)
        if body is None:
            problems.append(f"{meta_name}: the record's file is missing")
            continue
        if key in records:
            problems.append(f"{meta_name}: another file already holds the record {key!r}")
            continue
        used.add(body)
        records[key] = FolderRecord(key, content_type or _guess(body), body)
    for name in sorted(files - used):
        if name.startswith((".", OWN_PREFIX)):
            problems.append(f"{name}: a hidden file, or Satchel's without its metadata")
            continue
        # A file without metadata, as Crawlee for JavaScript writes them: the key is its name less extension.
        stem, dot, _ = name.rpartition(".")
        key = stem if dot and stem and mimetypes.guess_type(name)[0] else name
        if key in records:
            problems.append(f"{name}: another file already holds the record {key!r}")
            continue
        records[key] = FolderRecord(key, _guess(name), name)
    return sorted(records.values(), key=lambda r: r.key.encode()), problems


def _stem(name: str) -> str | None:
    """The name of the record file a metadata file's name goes with (None: not a record's metadata file)."""
    if name.endswith(RECORD_METADATA):
        return name[: -len(RECORD_METADATA)]
    if name.startswith(OWN_PREFIX) and name.endswith(OWN_METADATA):
        return name[: -len(OWN_METADATA)]
    return None


def _read_metadata(folder: int, name: str) -> tuple[str, str | None, str | None]:
    """A record's metadata file: its key, content type (None if none) and extension (JavaScript's)."""
    fd = _open_file(folder, name, MAX_METADATA_BYTES)
    try:
        text = b"".join(_chunks(fd, MAX_METADATA_BYTES + 1))
    finally:
        os.close(fd)
    try:
        meta = json.loads(text)
    except ValueError as exc:
        raise Skip("not a record's metadata (not JSON)") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("key"), str):
        raise Skip("not a record's metadata (no key)")
    content_type = meta.get("contentType") or meta.get("content_type") or None
    extension = meta.get("extension") or None
    if not isinstance(content_type, str | None) or not isinstance(extension, str | None):
        raise Skip("not a record's metadata (a content type or extension that is not text)")
    return meta["key"], content_type, extension


def _open_dir(parent: int, name: str) -> int:
    """A folder inside `parent`, opened without following a link."""
    try:
        return os.open(name, DIRECTORY, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
            raise Skip(_not_a_file(mode) if not stat.S_ISREG(mode) else "a file, not a store folder") from exc
        raise


def _open_file(folder: int, name: str, limit: int) -> int:
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
            raise Skip(_not_a_file(info.st_mode))
        raise Skip(f"{info.st_size} bytes, larger than the limit of {limit} bytes")
    os.set_blocking(fd, True)
    return fd


def _not_a_file(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a link; links are not followed"
    if stat.S_ISDIR(mode):
        return "a folder; only files directly in a store folder are records"
    return "not a regular file (a FIFO, device or socket)"


def _reason(error: Exception) -> str:
    return str(error) if isinstance(error, Skip) else f"cannot be read ({getattr(error, 'strerror', error)})"


def _chunks(fd: int, limit: int) -> Iterator[bytes]:
    """The file's bytes, up to `limit` (a file that grows while it is read stops there)."""
    left = limit
    while left > 0 and (chunk := os.read(fd, min(CHUNK, left))):
        left -= len(chunk)
        yield chunk


async def _read_chunks(fd: int) -> AsyncIterator[bytes]:
    # The record's own limit stops a file that grows while it is read (the engine refuses past it).
    for chunk in _chunks(fd, 2**63):
        yield chunk


def _guess(name: str) -> str:
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    textual = guessed.startswith("text/") or guessed == "application/json"
    return f"{guessed}; charset=utf-8" if textual else guessed
