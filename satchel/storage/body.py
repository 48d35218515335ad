"""Record bodies as they cross the seam: async byte streams with their length and encoding.

A body read from storage is either held inline (small records) or read from a blob as a stream. A blob store
that keeps bodies as local files also names the file, so the HTTP layer may send it without copying (an
optional fast path: the stream always works).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from satchel.storage.rows import RecordHead


class UploadBody(Protocol):
    """A record body as it arrives: chunks as stored, and their decoded length once all are read."""

    raw_size: int

    def __aiter__(self) -> AsyncIterator[bytes]: ...


@dataclass(slots=True)
class RecordRead:
    """A record ready to be sent: its head, and its body inline or as a blob to stream."""

    head: RecordHead
    inline: bytes | None
    # Opens the blob's stream; called once per read of the body, so a replaced record stays readable for
    # the blob store's grace period.
    opener: Callable[[], AsyncIterator[bytes]] | None = None
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
