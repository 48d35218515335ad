"""Taking a backup of a data dir while a server writes to it.

Why the copy is consistent:
- The database is copied with SQLite's online backup API in one step, which reads it inside one read
  transaction: the copy is the database as of one commit, and the server's writer goes on meanwhile (WAL).
  The read is held only while the database file itself is copied (0.85 s for a 200 MB database here, about
  240 MB/s), not while the blobs are. Meanwhile the WAL cannot restart, and a RESTART checkpoint (past
  db.WAL_LIMIT_BYTES) that comes due holds new writes back until the copy ends: at most that long.
- A blob file is never changed once its name is committed: every write of a record uploads its body under a
  fresh random name before the commit that names it (storage/spool.py, storage/blobs/files.py). So the blob
  files the copied database names, copied at any later time, are exactly the bodies it describes; blobs
  written after the snapshot are simply not named, and not copied.
- What can go wrong is a named blob vanishing: a record replaced or deleted after the snapshot has its old
  blob unlinked `blob_grace_seconds` later (60 s by default; 0 is allowed). So before copying, each named
  blob is pinned with a hard link in a folder of this process's own under the blob store's `tmp/` (a link
  takes microseconds and keeps the file's bytes whatever the sweeper unlinks; a server clears the folders of
  dead processes there when it starts, so a killed backup leaves nothing for long). A blob gone before its
  pin means the grace ran out between the snapshot and the pin: the snapshot is taken again, and only what
  it names anew is pinned and copied (blobs copied before are the same bytes, whoever names them).
  Holding the sweeper back instead would need the server's cooperation; retrying needs none. On a
  filesystem without hard links the copy itself is the pin, and a vanished blob likewise retakes the
  snapshot, which converges as long as each attempt copies only what changed since the last. A blob missing
  for two snapshots in a row is another matter: its record still names it, so the file was lost, and the
  backup stops and says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from satchel.backup.files import Bar, blob_path, copy_file, sha256_of
from satchel.backup.manifest import (
    BLOBS,
    DATABASE,
    FORMAT,
    BackupError,
    Manifest,
    counts,
    named_blobs,
    opened,
    satchel_version,
)
from satchel.clock import iso, now_ms
from satchel.service.users import TOKEN_FILE
from satchel.storage.blobs.owned import OwnedFolder
from satchel.storage.durable import fsync_path
from satchel.storage.sqlite.db import private_dir

ATTEMPTS = 5


# Makes a progress bar over a number of bytes, with a label.
Progress = Callable[[int, str], AbstractContextManager[Bar]]


class Pins:
    """Hard links that keep named blobs' bytes while they are copied, in a folder of this process's own."""

    def __init__(self, blobs: Path) -> None:
        self.blobs = blobs
        self.folder = blobs / "tmp" / f"{os.getpid()}-backup"
        self._own = OwnedFolder(self.folder)  # held: a server starting meanwhile leaves the pins alone
        self.held: set[str] = set()
        self.linkable = True

    def hold(self, names: set[str]) -> set[str]:
        """Pin the names not pinned yet; returns those already gone."""
        gone: set[str] = set()
        if names and self.linkable:
            self._own.make()
        for name in names - self.held:
            if not self.linkable:
                break
            try:
                os.link(blob_path(self.blobs, name), self.folder / name)
            except FileNotFoundError:
                gone.add(name)
            except OSError:  # no hard links here: the copy will read the blob folder directly
                self.linkable = False
            else:
                self.held.add(name)
        return gone

    def source(self, name: str) -> Path:
        return self.folder / name if name in self.held else blob_path(self.blobs, name)

    def release(self) -> None:
        self._own.remove()


def take_backup(data_dir: Path, dest: Path, progress: Progress) -> Manifest:
    """Copy the data dir's database and the blobs it names into dest (absent or empty); the manifest."""
    database = data_dir / DATABASE
    if not database.is_file():
        raise BackupError(
            f"{data_dir} holds no Satchel database ({DATABASE}): give the data dir a server uses."
        )
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(
            f"{dest} already exists and is not an empty folder: give a new path for the backup."
        )
    try:
        return _take(data_dir, dest, progress)
    except BaseException:  # a backup that failed leaves no half of itself behind
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _take(data_dir: Path, dest: Path, progress: Progress) -> Manifest:
    database = data_dir / DATABASE
    private_dir(dest)
    private_dir(dest / BLOBS)
    pins = Pins(data_dir / "blobs")
    copied: set[str] = set()
    gone: set[str] = set()
    try:
        for _ in range(ATTEMPTS):
            taken_at = now_ms()
            snapshot(database, dest / DATABASE)
            with opened(dest / DATABASE) as conn:
                named = named_blobs(conn)
            # A blob gone again, named by a newer snapshot too, is not a race with the sweeper: its record
            # still names it, so its file was lost.
            if lost := gone & named.keys():
                raise BackupError(
                    f"The data dir is damaged: {len(lost)} blob files its records name are missing, for "
                    f"example {blob_path(data_dir / 'blobs', min(lost))} (nor can those records be read)."
                )
            gone = pins.hold(set(named)) or _copy_blobs(named, copied, pins, dest / BLOBS, progress)
            if not gone:
                break
        else:
            raise BackupError(
                f"Blobs named by the database kept being deleted before they were copied ({ATTEMPTS} "
                "attempts): raise blob_grace_seconds on the server, or back up at a quieter time."
            )
    finally:
        pins.release()
    for name in copied - set(named):  # copied in an earlier attempt; the final snapshot no longer names it
        blob_path(dest / BLOBS, name).unlink()
    fsync_path(dest / DATABASE)
    token = data_dir / TOKEN_FILE
    if token.is_file():
        copy_file(token, dest / TOKEN_FILE, None)
    with opened(dest / DATABASE) as conn:
        schema_version = conn.execute("PRAGMA user_version").fetchone()[0]
        found = counts(conn)
    manifest = Manifest(
        format=FORMAT,
        satchel_version=satchel_version(),
        schema_version=schema_version,
        created_at=iso(taken_at),
        database_bytes=(dest / DATABASE).stat().st_size,
        database_sha256=sha256_of(dest / DATABASE),
        blob_count=len(named),
        blob_bytes=sum(named.values()),
        counts=found,
    )
    manifest.write(dest)
    return manifest


def snapshot(database: Path, target: Path) -> None:
    """The database as of one commit, as one self-contained file (no WAL beside it)."""
    target.unlink(missing_ok=True)
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600))
    with (
        contextlib.closing(sqlite3.connect(database, timeout=30)) as source,
        contextlib.closing(sqlite3.connect(target, isolation_level=None)) as copy,
    ):
        source.backup(copy)  # pages=-1: the whole file in one step, inside one read transaction
        # The ledgers of dead and unfinished blobs name files the backup does not hold.
        copy.execute("DELETE FROM dead_blobs")
        copy.execute("DELETE FROM blob_uploads")
        copy.execute("PRAGMA journal_mode=DELETE")


def _copy_blobs(
    named: dict[str, int], copied: set[str], pins: Pins, dest: Path, progress: Progress
) -> set[str]:
    """Copy the named blobs not copied yet; those that had vanished (only possible without pins)."""
    todo = {name: size for name, size in named.items() if name not in copied}
    gone: set[str] = set()
    with progress(sum(todo.values()), "Copying blobs") as bar:
        for name, size in todo.items():
            target = blob_path(dest, name)
            target.parent.mkdir(mode=0o700, exist_ok=True)
            try:
                written = copy_file(pins.source(name), target, bar)
            except FileNotFoundError:
                gone.add(name)
                continue
            if written != size:
                raise BackupError(
                    f"The blob {name} holds {written} bytes where its record says {size}: the data dir is "
                    "damaged (the record cannot be read either)."
                )
            copied.add(name)
    for folder in {blob_path(dest, name).parent for name in todo}:
        fsync_path(folder)
    return gone
