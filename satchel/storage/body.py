"""Record bodies as they cross the seam: async byte streams with their length and encoding.

A body read from storage is either held inline (small records) or read from a blob as a stream, whole or a
byte range of it (a blob store seeks in a file or asks S3 for the range: a range never reads the whole body).
A blob store that keeps bodies as local files also names the file, so the HTTP layer may send it without
copying (an optional fast path: the stream always works).

A body being written is hashed as it streams to storage (Hashed), so a record's ETag costs no second pass.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from satchel.storage.rows import RecordHead


class UploadBody(Protocol):
    """A record body as it arrives: chunks as stored, and their decoded length once all are read."""

    @property
    def raw_size(self) -> int: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


class Hashed:
    """An upload that hashes its chunks as they pass: its SHA-256 (the record's ETag) once read to the end."""

    def __init__(self, body: UploadBody) -> None:
        self._body = body
        self._sha = hashlib.sha256()

    @property
    def raw_size(self) -> int:
        return self._body.raw_size

    def etag(self) -> str:
        return self._sha.hexdigest()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._body:
            self._sha.update(chunk)
            yield chunk


class Opener(Protocol):
    """Opens a blob's stream: from start (inclusive) to end (exclusive; None: the end of the blob)."""

    def __call__(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]: ...


@dataclass(slots=True)
class RecordRead:
    """A record ready to be sent: its head, and its body inline or as a blob to stream."""

    head: RecordHead
    inline: bytes | None
    # Opens the blob's stream; called once per read of the body, so a replaced record stays readable for
    # the blob store's grace period.
    opener: Opener | None = None
    local_path: Path | None = None  # the blob as a local file, when the blob store has one

    def local_file(self) -> tuple[Path, os.stat_result] | None:
        """The body's local file and its stat, if the blob store keeps one and it is still there."""
        if self.local_path is None:
            return None
        try:
            return self.local_path, os.stat(self.local_path)
        except FileNotFoundError:
            return None

    def stream(self) -> AsyncIterator[bytes]:
        """The body as stored (still in its Content-Encoding)."""
        if self.opener is None:
            return _one(self.inline or b"")
        return self.opener()

    def slice(self, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes start (inclusive) to end (exclusive) of the body as stored, reading only those."""
        if self.opener is None:
            return _one((self.inline or b"")[start:end])
        return self.opener(start, end)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def started(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The same stream with its first chunk already read, so a blob that is gone (BlobMissing) shows now,
    before a response has begun, rather than midway through sending one."""
    first = await anext(chunks, None)

    async def rest() -> AsyncIterator[bytes]:
        if first is not None:
            yield first
        async for chunk in chunks:
            yield chunk

    return rest()
