"""Crawlee's local storage folders, in and out: how a team moves what its crawlers kept on disk into Satchel.

Crawlee keeps each key-value store as a folder under `key_value_stores/`. Crawlee for Python names a record's
file by its percent-encoded key and keeps `{file}.__metadata__.json` beside it (`key`, `content_type`);
Crawlee for JavaScript names it `{key}.{extension}` and may keep `{key}.__metadata__.json` (`key`,
`contentType`, `extension`). Both layouts are read; exports use the Python one with `contentType` in the
metadata, which both Crawlees read.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from satchel.clock import iso
from satchel.errors import SatchelError
from satchel.service import Caller, Services
from satchel.service.encoding import plain_stream
from satchel.service.validation import check_key, check_name

STORES_FOLDER = "key_value_stores"
METADATA = "__metadata__.json"
RECORD_METADATA = "." + METADATA
CHUNK = 1024 * 1024


@dataclass(slots=True)
class FolderRecord:
    key: str
    content_type: str
    path: Path


@dataclass(slots=True)
class Report:
    stores: dict[str, int] = field(default_factory=dict)  # store name -> records written
    skipped: list[str] = field(default_factory=list)  # what could not be taken, and why


def store_folders(path: Path) -> list[Path]:
    """The store folders in a Crawlee storage folder, in its `key_value_stores`, or one store folder."""
    if (path / STORES_FOLDER).is_dir():
        path = path / STORES_FOLDER
    if path.name == STORES_FOLDER:
        return sorted(p for p in path.iterdir() if p.is_dir())
    return [path]


def read_folder(folder: Path) -> tuple[list[FolderRecord], list[str]]:
    """The records a store folder holds, in either Crawlee's layout, and the files that were not records."""
    records: dict[str, FolderRecord] = {}
    problems: list[str] = []
    used: set[Path] = set()
    for meta_path in sorted(folder.glob("*" + RECORD_METADATA)):
        used.add(meta_path)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            key = str(meta["key"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"{meta_path.name}: not a record's metadata")
            continue
        stem = meta_path.name[: -len(RECORD_METADATA)]
        extension = meta.get("extension")
        candidates = [folder / stem, folder / f"{key}.{extension}" if extension else folder / key]
        body = next((p for p in candidates if p.is_file()), None)
        if body is None:
            problems.append(f"{meta_path.name}: the record's file is missing")
            continue
        used.add(body)
        content_type = meta.get("contentType") or meta.get("content_type") or _guess(body.name)
        records[key] = FolderRecord(key, str(content_type), body)
    for path in sorted(folder.iterdir()):
        if path in used or not path.is_file() or path.name == METADATA or path.name.startswith("."):
            continue
        # A file without metadata, as Crawlee for JavaScript writes them: the key is its name less extension.
        key = path.stem if path.suffix and mimetypes.guess_type(path.name)[0] else path.name
        records.setdefault(key, FolderRecord(key, _guess(path.name), path))
    return sorted(records.values(), key=lambda r: r.key.encode()), problems


async def import_folders(
    services: Services, caller: Caller, path: Path, *, store_name: str | None = None
) -> Report:
    """Copy every store folder under `path` into the caller's named stores (created when missing)."""
    report = Report()
    folders = store_folders(path)
    if store_name is not None and len(folders) != 1:
        raise SatchelError(f"{path} holds {len(folders)} stores; --store names one.", "invalid-request")
    for folder in folders:
        name = store_name or folder.name
        try:
            check_name(name)
        except SatchelError as error:
            report.skipped.append(f"{folder}: {error.message} Give it another name with --store.")
            continue
        store, _ = await services.stores.get_or_create(caller, name, None)
        records, problems = read_folder(folder)
        report.skipped += [f"{folder}/{problem}" for problem in problems]
        written = 0
        for record in records:
            try:
                check_key(record.key)
                await services.records.put(
                    caller,
                    store.id,
                    record.key,
                    content_type=record.content_type,
                    content_encoding=None,
                    chunks=_file_chunks(record.path),
                )
            except SatchelError as error:
                report.skipped.append(f"{record.path}: {error.message}")
                continue
            written += 1
        report.stores[name] = written
    return report


async def export_store(services: Services, caller: Caller, ref: str, path: Path) -> tuple[Path, int]:
    """Write a store into `path` as Crawlee keeps it locally; return the store's folder and record count."""
    store, _ = await services.stores.get(caller, ref)
    folder = path / STORES_FOLDER / (store.name or store.id)
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    _, records = await services.records.all_records(caller, store.id, prefix=None, collection=None)
    async for record in records:
        head = record.head
        name = quote(head.key, safe="")
        with open(folder / name, "wb") as out:  # noqa: ASYNC230 - the CLI's own loop: nothing else waits
            async for chunk in plain_stream(record):
                out.write(chunk)
        meta = {"key": head.key, "contentType": head.content_type, "size": head.raw_size}
        (folder / (name + RECORD_METADATA)).write_text(json.dumps(meta), encoding="utf-8")
        written += 1
    meta = {
        "id": store.id,
        "name": store.name,
        "createdAt": iso(store.created_at),
        "modifiedAt": iso(store.modified_at),
        "accessedAt": iso(store.accessed_at),
    }
    (folder / METADATA).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return folder, written


def _guess(name: str) -> str:
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    textual = guessed.startswith("text/") or guessed == "application/json"
    return f"{guessed}; charset=utf-8" if textual else guessed


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as f:  # noqa: ASYNC230 - the CLI's own loop: nothing else waits
        while chunk := f.read(CHUNK):
            yield chunk
