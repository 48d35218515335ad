"""Reading Crawlee's local storage folders into stores: only regular files directly inside, opened safely."""

from __future__ import annotations

import json
import mimetypes
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satchel.crawlee_storage.files import Skip, chunks, not_a_file, open_dir, open_file
from satchel.crawlee_storage.layout import (
    MAX_METADATA_BYTES,
    METADATA,
    OWN_METADATA,
    OWN_PREFIX,
    PARTIAL,
    RECORD_METADATA,
    STORES_FOLDER,
    guess_type,
)
from satchel.crawlee_storage.stores import Stores
from satchel.errors import SatchelError
from satchel.service.validation import check_name

# The rest of a Crawlee storage folder, beside key_value_stores.
OTHER_FOLDERS = {"datasets": "datasets", "request_queues": "request queues"}
PARTIAL_SKIPPED = "an unfinished export, not a store (export the store again to finish it)"


@dataclass(slots=True)
class FolderRecord:
    key: str
    content_type: str
    name: str  # the body's file name in the store folder


@dataclass(slots=True)
class Report:
    stores: dict[str, int] = field(default_factory=dict)  # store name -> records written
    skipped: list[str] = field(default_factory=list)  # what could not be taken, and why


async def import_folders(stores: Stores, path: Path, *, store_name: str | None = None) -> Report:
    """Copy every store folder under `path` into named stores (created when missing).

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
                    await _import_folder(stores, fd, target, report)
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
        report.skipped.append(f"{path / STORES_FOLDER}: {not_a_file(mode)}")
        return []
    if mode is not None and stat.S_ISDIR(mode):
        _not_stores(root, path, report)
        stores, shown = open_dir(root, STORES_FOLDER), path / STORES_FOLDER
    elif path.name == STORES_FOLDER:
        stores, shown = root, path
    elif any(_is_dir(root, name) for name in OTHER_FOLDERS):  # a storage folder without key-value stores
        _not_stores(root, path, report)
        return []
    else:  # a store folder (which may hold a record called key_value_stores)
        return [(path, root)]
    folders: list[tuple[Path, int]] = []
    try:
        for entry in sorted(os.scandir(stores), key=lambda e: e.name):
            if PARTIAL.fullmatch(entry.name):
                report.skipped.append(f"{shown / entry.name}: {PARTIAL_SKIPPED}")
                continue
            try:
                folders.append((shown / entry.name, open_dir(stores, entry.name)))
            except (Skip, OSError) as skip:
                report.skipped.append(f"{shown / entry.name}: {_reason(skip)}")
    finally:
        if stores != root:
            os.close(stores)
    return folders


def _not_stores(root: int, path: Path, report: Report) -> None:
    """Report what a Crawlee storage folder holds besides its key-value stores: none of it is imported."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name == STORES_FOLDER:
            continue
        kind = OTHER_FOLDERS.get(entry.name) if _is_dir(root, entry.name) else None
        why = f"{kind} are not imported, only key-value stores" if kind else "not a key-value store"
        report.skipped.append(f"{path / entry.name}: {why}")


def _is_dir(parent: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


async def _import_folder(stores: Stores, folder: int, target: tuple[Path, str], report: Report) -> None:
    """Copy one open store folder (shown as target[0]) into the store named target[1]."""
    shown, name = target
    try:
        check_name(name)
    except SatchelError as error:
        report.skipped.append(f"{shown}: {error.message} Give it another name with --store.")
        return
    store_id = await stores.named(name)
    records, problems = read_folder(folder)
    report.skipped += [f"{shown}/{problem}" for problem in problems]
    written = 0
    for record in records:
        try:
            fd = open_file(folder, record.name, stores.record_limit)
        except Skip as skip:
            report.skipped.append(f"{shown / record.name}: {skip}")
            continue
        try:
            await stores.put(store_id, record.key, record.content_type, fd)
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
        if not stat.S_ISREG(kind):
            problems.append(f"{entry.name}: {not_a_file(kind)}")
        elif not _is_text(entry.name):  # its bytes are no UTF-8: Python holds them as lone surrogates
            problems.append(f"{entry.name}: a name that is not UTF-8 text, so no record key")
        else:
            files.add(entry.name)
    if METADATA in files and (problem := _store_metadata_problem(folder)):
        problems.append(f"{METADATA}: {problem}")
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
        records[key] = FolderRecord(key, content_type or guess_type(body), body)
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
        records[key] = FolderRecord(key, guess_type(name), name)
    return sorted(records.values(), key=lambda r: r.key.encode()), problems


def _stem(name: str) -> str | None:
    """The name of the record file a metadata file's name goes with (None: not a record's metadata file)."""
    if name.endswith(RECORD_METADATA):
        return name[: -len(RECORD_METADATA)]
    if name.startswith(OWN_PREFIX) and name.endswith(OWN_METADATA):
        return name[: -len(OWN_METADATA)]
    return None


def _store_metadata_problem(folder: int) -> str | None:
    """What is wrong with the store's own metadata file, if anything. Nothing in it is imported (a store
    takes its folder's name, and its dates are the import's), but one that cannot be read is said, as every
    other file not taken is, rather than passed over without a word."""
    try:
        meta = _read_json(folder, METADATA)
    except Skip as skip:
        return f"{skip}; ignored, the store is named for its folder"
    if not isinstance(meta, dict):
        return "not a store's metadata (not a JSON object); ignored, the store is named for its folder"
    return None


def _read_json(folder: int, name: str) -> Any:
    """A metadata file's JSON (None when it is not JSON); Skip when it is no file to read (a link, a FIFO,
    too large)."""
    fd = open_file(folder, name, MAX_METADATA_BYTES)
    try:
        text = b"".join(chunks(fd, MAX_METADATA_BYTES + 1))
    finally:
        os.close(fd)
    try:
        return json.loads(text)
    except ValueError:
        return None


def _read_metadata(folder: int, name: str) -> tuple[str, str | None, str | None]:
    """A record's metadata file: its key, content type (None if none) and extension (JavaScript's)."""
    meta = _read_json(folder, name)
    if meta is None:
        raise Skip("not a record's metadata (not JSON)")
    if not isinstance(meta, dict) or not isinstance(meta.get("key"), str):
        raise Skip("not a record's metadata (no key)")
    if not _is_text(meta["key"]):  # JSON's \udcff escapes
        raise Skip("not a record's metadata (a key that is not UTF-8 text)")
    content_type = meta.get("contentType") or meta.get("content_type") or None
    extension = meta.get("extension") or None
    if not isinstance(content_type, str | None) or not isinstance(extension, str | None):
        raise Skip("not a record's metadata (a content type or extension that is not text)")
    return meta["key"], content_type, extension


def _is_text(name: str) -> bool:
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _reason(error: Exception) -> str:
    return str(error) if isinstance(error, Skip) else f"cannot be read ({getattr(error, 'strerror', error)})"
