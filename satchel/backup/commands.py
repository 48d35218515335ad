"""The `satchel backup` and `satchel restore` commands."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from satchel.backup.archive import is_archive, pack, unpacked
from satchel.backup.files import Bar, beside
from satchel.backup.manifest import DEPLOY_DOC, BackupError, Manifest
from satchel.backup.restore import check_target
from satchel.backup.restore import restore as restore_into
from satchel.backup.take import take_backup
from satchel.cli_options import settings_from, storage_options
from satchel.settings import Settings


class _Silent:
    def update(self, n_steps: int) -> None:
        """No bar where nobody watches (stderr is a file or a pipe)."""


@contextlib.contextmanager
def _progress(length: int, label: str) -> Iterator[Bar]:
    """A bar on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        yield _Silent()
        return
    with click.progressbar(length=length, label=label, file=sys.stderr, show_pos=False) as bar:
        yield bar


def _embedded(where: dict[str, Any], command: str) -> Settings:
    settings = settings_from(**where)
    if settings.database or settings.blob_store:
        raise click.ClickException(
            f"`satchel {command}` works on the embedded engine (SQLite and files in the data dir). "
            f"PostgreSQL and an S3 bucket are backed up with their own tools: {DEPLOY_DOC} says how, and in "
            "which order."
        )
    return settings


def _said(error: Exception, path: Path) -> str:
    """An error in words; one about a scratch path beside `path` names `path`, which is the user's."""
    if isinstance(error, OSError) and Path(str(error.filename or "")).name.startswith(f".{path.name}."):
        return f"Cannot write {path}: {error.strerror}."
    return str(error)


def _summary(manifest: Manifest) -> str:
    c = manifest.counts
    return (
        f"{c['users']} users, {c['keyValueStores']} key-value stores with {c['records']} records "
        f"({manifest.blob_count} blob files, {manifest.blob_bytes} bytes), {c['datasets']} datasets with "
        f"{c['datasetItems']} items, {c['requestQueues']} request queues with {c['requests']} requests, "
        f"{c['runs']} runs"
    )


def _take(data_dir: Path, dest: Path) -> Manifest:
    if not is_archive(dest):
        return take_backup(data_dir, dest, _progress)
    if dest.exists():
        raise BackupError(f"{dest} already exists: give a new path for the backup.")
    folder = beside(dest, "taking")
    shutil.rmtree(folder, ignore_errors=True)
    try:
        manifest = take_backup(data_dir, folder, _progress)
        pack(folder, dest)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return manifest


def _restore(src: Path, data_dir: Path, *, force: bool) -> Manifest:
    check_target(data_dir, force=force)  # before an archive is unpacked beside it
    if not is_archive(src):
        return restore_into(src, data_dir, force=force, progress=_progress)
    with unpacked(src, data_dir) as folder:
        return restore_into(folder, data_dir, force=force, progress=_progress)


@click.command()
@click.argument("dest", type=click.Path(path_type=Path))
@storage_options
def backup(dest: Path, **where: Any) -> None:
    """Copy the data dir into the new folder DEST (or one file, if DEST ends in .tar, .tar.gz or .tgz),
    consistently, while a server may be writing to it."""
    settings = _embedded(where, "backup")
    started = time.monotonic()
    try:
        manifest = _take(settings.data_dir, dest)
    except (BackupError, OSError, sqlite3.Error) as error:  # a full disk, a locked or damaged database
        raise click.ClickException(_said(error, dest)) from error
    click.echo(f"Backed up {_summary(manifest)}, as of {manifest.created_at}, into {dest}")
    click.echo(f"({manifest.database_bytes} bytes of database; {time.monotonic() - started:.1f} s)")


@click.command()
@click.argument("src", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--force",
    is_flag=True,
    help="Replace the data dir there (only a Satchel data dir, never while a server uses it).",
)
@storage_options
def restore(src: Path, force: bool, **where: Any) -> None:
    """Check the backup SRC (a folder, or a .tar, .tar.gz or .tgz) whole, then put it into the data dir,
    which must be empty (or --force) and not in use by a running server."""
    settings = _embedded(where, "restore")
    try:
        manifest = _restore(src, settings.data_dir, force=force)
    except (BackupError, OSError, sqlite3.Error) as error:  # a full disk, a locked or damaged database
        raise click.ClickException(_said(error, settings.data_dir)) from error
    click.echo(f"Restored {_summary(manifest)}, as of {manifest.created_at}, into {settings.data_dir}")
