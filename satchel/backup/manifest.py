"""What a backup folder holds and how it is checked: its manifest, and the blob files its database names."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

from satchel.storage.durable import fsync_path

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "satchel.db"
BLOBS = "blobs"
DEPLOY_DOC = 'the section "Backups" of docs/deploy.md'
# What the manifest counts, each as the query that counts it in the copied database.
COUNTS = {
    "users": "SELECT count(*) FROM users",
    "keyValueStores": "SELECT count(*) FROM stores WHERE kind = 'key-value-store'",
    "records": "SELECT count(*) FROM records",
    "datasets": "SELECT count(*) FROM stores WHERE kind = 'dataset'",
    "datasetItems": "SELECT count(*) FROM dataset_items",
    "requestQueues": "SELECT count(*) FROM stores WHERE kind = 'request-queue'",
    "requests": "SELECT count(*) FROM requests",
    "runs": "SELECT count(*) FROM runs",
}


class BackupError(Exception):
    """A backup or restore that cannot be done, with what to do about it."""


@dataclass(frozen=True, slots=True)
class Manifest:
    format: int
    satchel_version: str
    schema_version: int
    created_at: str  # ISO 8601, UTC: when the database snapshot was taken
    database_bytes: int
    database_sha256: str
    blob_count: int
    blob_bytes: int
    counts: dict[str, int]

    def write(self, folder: Path) -> None:
        """Written under a temporary name, then renamed: the manifest's presence means a finished backup."""
        tmp = folder / (MANIFEST + ".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(folder / MANIFEST)
        fsync_path(folder)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not path.is_file():
            raise BackupError(
                f"{folder} is not a finished Satchel backup: it has no {MANIFEST} (a backup writes it last)."
            )
        try:
            raw: dict[str, Any] = orjson.loads(path.read_bytes())
            manifest = cls(**raw)
        except (orjson.JSONDecodeError, TypeError) as error:
            raise BackupError(f"{path} is damaged or not a Satchel backup manifest: {error}.") from error
        if manifest.format != FORMAT:
            raise BackupError(
                f"{folder} is a backup of format {manifest.format}; this Satchel reads {FORMAT}."
            )
        return manifest


def satchel_version() -> str:
    return version("satchel")


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {name: conn.execute(sql).fetchone()[0] for name, sql in COUNTS.items()}


def named_blobs(conn: sqlite3.Connection) -> dict[str, int]:
    """Every blob the database names, with its size: a record's stored size is its blob file's size."""
    rows = conn.execute("SELECT blob, size FROM records WHERE blob IS NOT NULL")
    return {name: size for name, size in rows}


@contextlib.contextmanager
def opened(database: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a copied database, closed on exit."""
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()
