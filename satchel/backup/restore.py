"""Restoring a backup into a data dir: checked whole first, assembled beside the data dir, then moved in.

A running server notes itself in its data dir: each of its processes keeps a folder named `PID-...` under
`blobs/tmp/` while it runs (storage/blobs/files.py), and so does every command that opens the data. A restore
refuses while any of those processes lives, even with --force: the server would go on with the old
database open under the new files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from satchel.backup.files import beside, blob_path, copy_file, sha256_of
from satchel.backup.manifest import (
    BLOBS,
    DATABASE,
    BackupError,
    Manifest,
    named_blobs,
    opened,
)
from satchel.backup.take import Progress
from satchel.service.users import TOKEN_FILE
from satchel.storage.blobs.owned import held
from satchel.storage.durable import fsync_path
from satchel.storage.sqlite.db import private_dir
from satchel.storage.sqlite.migrations import STEPS


def verify(backup: Path) -> tuple[Manifest, dict[str, int]]:
    """The manifest and the blobs the backup's database names; BackupError if anything is missing or off."""
    manifest = Manifest.read(backup)
    if manifest.schema_version > len(STEPS):
        raise BackupError(
            f"The backup's database is at schema version {manifest.schema_version}, newer than this Satchel "
            f"knows ({len(STEPS)}); restore it with Satchel {manifest.satchel_version} or later."
        )
    database = backup / DATABASE
    if not database.is_file():
        raise BackupError(f"The backup is damaged: {database} is missing.")
    size = database.stat().st_size
    if size != manifest.database_bytes or sha256_of(database) != manifest.database_sha256:
        raise BackupError(
            f"The backup is damaged: {database} is not the file the manifest describes "
            f"({size} bytes, {manifest.database_bytes} expected, or other contents)."
        )
    with opened(database) as conn:
        named = named_blobs(conn)
    missing = [name for name in named if not blob_path(backup / BLOBS, name).is_file()]
    if missing:
        raise BackupError(
            f"The backup is damaged: {len(missing)} of its {len(named)} blob files are missing, for example "
            f"{blob_path(backup / BLOBS, missing[0])}. Nothing was restored."
        )
    wrong = [name for name, size in named.items() if blob_path(backup / BLOBS, name).stat().st_size != size]
    if wrong:
        path = blob_path(backup / BLOBS, wrong[0])
        raise BackupError(
            f"The backup is damaged: {len(wrong)} blob files are not the size their records say, for example "
            f"{path} ({path.stat().st_size} bytes, {named[wrong[0]]} expected). Nothing was restored."
        )
    return manifest, named


def in_use_by(data_dir: Path) -> int | None:
    """The id of a live process that has the data dir open (a server, or a command), if there is one."""
    tmp = data_dir / "blobs" / "tmp"
    if not tmp.is_dir():
        return None
    for folder in tmp.iterdir():
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and held(folder):
            return int(pid)
    return None


def check_target(data_dir: Path, *, force: bool) -> None:
    """That a restore may put a data dir at data_dir: a new or empty folder, or (--force) a data dir no
    process uses. --force replaces only a data dir: a typo in --data-dir must not delete a folder of files."""
    folder = data_dir.absolute().parent
    if not folder.is_dir():
        raise BackupError(f"{data_dir} cannot be made: {folder} is not a folder.")
    if not data_dir.exists():
        return
    if not data_dir.is_dir():
        raise BackupError(f"{data_dir} is a file: name a new or empty folder for the data dir.")
    if not any(data_dir.iterdir()):
        return
    pid = in_use_by(data_dir)
    if pid is not None:
        raise BackupError(
            f"A Satchel process (pid {pid}) is using {data_dir}: stop the server first, then restore."
        )
    if not (data_dir / DATABASE).is_file():
        raise BackupError(
            f"{data_dir} is not empty and is not a Satchel data dir (it holds no {DATABASE}): restore into "
            "a new or empty folder."
        )
    if not force:
        raise BackupError(
            f"{data_dir} is not empty: restore into a new data dir, or give --force to replace it."
        )


def restore(backup: Path, data_dir: Path, *, force: bool, progress: Progress) -> Manifest:
    manifest, named = verify(backup)
    check_target(data_dir, force=force)
    staging = beside(data_dir, "restoring")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        private_dir(staging)
        private_dir(staging / BLOBS)
        copy_file(backup / DATABASE, staging / DATABASE, None)
        if (backup / TOKEN_FILE).is_file():
            copy_file(backup / TOKEN_FILE, staging / TOKEN_FILE, None)
        with progress(sum(named.values()), "Restoring blobs") as bar:
            for name in named:
                target = blob_path(staging / BLOBS, name)
                target.parent.mkdir(mode=0o700, exist_ok=True)
                copy_file(blob_path(backup / BLOBS, name), target, bar)
        folders = {blob_path(staging / BLOBS, name).parent for name in named}
        for folder in (*folders, staging / BLOBS, staging):
            fsync_path(folder)
        _swap_in(staging, data_dir.absolute())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _swap_in(staging: Path, data_dir: Path) -> None:
    """Replace the data dir by the staged one with two renames (a sibling: on the same filesystem)."""
    old = beside(data_dir, "replaced")
    if data_dir.exists():
        data_dir.rename(old)
    staging.rename(data_dir)
    fsync_path(data_dir.parent)
    shutil.rmtree(old, ignore_errors=True)
