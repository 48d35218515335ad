"""File work a backup and a restore share: where blobs sit, whole-file copies and digests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

CHUNK = 1024 * 1024


class Bar(Protocol):
    """A progress bar over bytes (click's, or one that shows nothing)."""

    def update(self, n_steps: int) -> None: ...


def blob_path(root: Path, name: str) -> Path:
    """Where a blob lives under a blobs folder: the layout of the file blob store (storage/blobs/files.py)."""
    return root / name[:2] / name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def beside(path: Path, what: str) -> Path:
    """A scratch path next to path (so on its filesystem), named for this process."""
    path = path.absolute()
    return path.with_name(f".{path.name}.{what}-{os.getpid()}")


def copy_file(source: Path, target: Path, bar: Bar | None) -> int:
    """Copy a file, private to its owner and durable on return; the number of bytes copied."""
    written = 0
    with open(source, "rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                written += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    return written
