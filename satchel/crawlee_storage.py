"""Crawlee's local storage folders, in and out: how a team moves what its crawlers kept on disk into Satchel.

Crawlee keeps each key-value store as a folder under `key_value_stores/`. Crawlee for Python names a record's
file by its percent-encoded key (`urllib.parse.quote(key, safe="")`) and keeps `{file}.__metadata__.json`
beside it (`key`, `content_type`); Crawlee for JavaScript names it `{key}.{extension}` and may keep
`{key}.__metadata__.json` (`key`, `contentType`, `extension`). Both layouts are read.

Exports use Crawlee for Python's layout, with `contentType` in the metadata, which it reads. That layout
cannot name every key: `__metadata__.json` is the store's own file, a key ending in `.__metadata__.json` names
another record's metadata file (and Crawlee takes it for one), and a key whose encoded name is longer than a
file name may be (255 bytes, with the metadata file's suffix) cannot be written at all. Such a record goes in
under Satchel's own names, `~{sha256 of the key}` with `~{...}.__satchel__.json` beside it: `~` is in no
file name Crawlee gives a key, so the two never meet, and Crawlee for Python does not see the record (it
lists only `*.__metadata__.json`) rather than fail on it. Satchel's import reads both, so an export imports
back to the same keys, bytes and content types.

A folder to import is someone else's: only regular files directly inside it are read, each opened without
following links (O_NOFOLLOW, then fstat) and without waiting on a FIFO, no larger than max_record_bytes, and a
name from a metadata file is used only if the folder lists a regular file by that name. An export writes
only files it creates (O_CREAT | O_EXCL | O_NOFOLLOW) into a store folder it made or found empty, through no
link; if it fails, it removes what it wrote.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import mimetypes
import os
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from satchel.clock import iso
from satchel.errors import SatchelError
from satchel.service import Caller, Services
from satchel.service.encoding import plain_stream
from satchel.service.validation import check_name

STORES_FOLDER = "key_value_stores"
METADATA = "__metadata__.json"
RECORD_METADATA = "." + METADATA
OWN_PREFIX = "~"  # Satchel's own names, for keys Crawlee's layout cannot name
OWN_METADATA = ".__satchel__.json"
NAME_MAX = 255  # bytes in one file name (Linux, macOS, Windows)
MAX_METADATA_BYTES = 64 * 1024  # a key, a content type and a few numbers
CHUNK = 1024 * 1024
DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer (the import hung).
READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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


@dataclass(slots=True)
class Exported:
    folder: Path
    records: int
    own_names: list[str]  # keys written under Satchel's own names: Crawlee does not read them


# --- names


def crawlee_name(key: str) -> str | None:
    """The file name Crawlee for Python gives the key's body, or None when its layout cannot carry the key."""
    name = quote(key, safe="")
    if name == METADATA or name.endswith(RECORD_METADATA):
        return None
    if len((name + RECORD_METADATA).encode()) > NAME_MAX:
        return None
    return name


def file_names(key: str) -> tuple[str, str]:
    """The names of the key's body and metadata files in an export."""
    name = crawlee_name(key)
    if name is not None:
        return name, name + RECORD_METADATA
    own = OWN_PREFIX + hashlib.sha256(key.encode()).hexdigest()
    return own, own + OWN_METADATA


# --- import


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


# --- export


async def export_store(services: Services, caller: Caller, ref: str, path: Path) -> Exported:
    """Write a store into `path/key_value_stores/NAME` as Crawlee keeps it locally.

    The store folder must be new or empty; every file is created, never opened if it exists, and no link is
    followed below `path`. On failure what was written is removed.
    """
    store, _ = await services.stores.get(caller, ref)
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
            records, own = await _write_records(services, caller, store.id, writer)
            meta = {
                "id": store.id,
                "name": store.name,
                "createdAt": iso(store.created_at),
                "modifiedAt": iso(store.modified_at),
                "accessedAt": iso(store.accessed_at),
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


async def _write_records(
    services: Services, caller: Caller, store_id: str, writer: _Writer
) -> tuple[int, list[str]]:
    written = 0
    own: list[str] = []
    _, records = await services.records.all_records(caller, store_id, prefix=None, collection=None)
    async for record in records:
        head = record.head
        body, meta = file_names(head.key)
        if body.startswith(OWN_PREFIX):
            own.append(head.key)
        fd = writer.create(body)
        try:
            async for chunk in plain_stream(record):
                _write_all(fd, chunk)
        finally:
            os.close(fd)
        data = {"key": head.key, "contentType": head.content_type, "size": head.raw_size}
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
                _write_all(fd, chunk)
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
