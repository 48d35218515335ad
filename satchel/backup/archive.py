"""A backup as one file: a DEST ending in .tar, .tar.gz or .tgz is the backup folder, taken beside it and then
packed (and a SRC like it unpacked beside the data dir before it is checked), so it needs room for both."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from satchel.backup.files import beside
from satchel.backup.manifest import BackupError
from satchel.storage.durable import fsync_path

SUFFIXES = (".tar", ".tar.gz", ".tgz")
TOP = "satchel-backup"  # the one folder inside an archive


def is_archive(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


def pack(folder: Path, archive: Path) -> None:
    """Write the folder as archive, under a temporary name until it is whole."""
    partial = archive.with_name(archive.name + ".partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT, 0o600))  # it holds the admin token too
    with tarfile.open(partial, "w" if archive.name.endswith(".tar") else "w:gz") as tar:
        tar.add(folder, arcname=TOP)
    fsync_path(partial)
    partial.replace(archive)
    fsync_path(archive.absolute().parent)


@contextlib.contextmanager
def unpacked(archive: Path, near: Path) -> Iterator[Path]:
    """The backup folder inside archive, unpacked next to `near` for as long as it is needed."""
    scratch = beside(near, "unpacking")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        try:
            # Opened as its name says, so a damaged one is one error, not one for each way tarfile tries.
            with tarfile.open(archive, "r:" if archive.name.endswith(".tar") else "r:gz") as tar:
                tar.extractall(scratch, filter="data")  # no paths outside scratch, no devices or odd modes
        except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as error:  # EOFError: cut short
            kind = "tar" if archive.name.endswith(".tar") else "gzipped tar"
            raise BackupError(
                f"{archive} cannot be unpacked as a {kind} file ({error}); nothing was restored."
            ) from error
        yield scratch / TOP
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
