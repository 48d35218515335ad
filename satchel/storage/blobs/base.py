"""Where bodies too large to keep inline live: a blob store, named by the metadata engine's records.

A blob is written once under a fresh name and never changed; a new value of a record gets a new blob, so a
reader holding an old name always sees one whole value. The metadata engine decides names, notes an upload
before it starts (so a crash leaves nothing unaccounted for) and lists dead blobs after a grace period.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Protocol

# The object (or file) beside the blobs that holds the deployment's mark (storage/pairing.py). Blob names are
# 32 hex digits, so no blob ever takes this name.
MARK_NAME = "satchel-deployment"


class BlobStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def put(self, name: str, chunks: AsyncIterable[bytes]) -> int:
        """Write the chunks as the blob `name`; durable (as the settings ask) and whole on return.

        Returns the number of bytes written. On any failure nothing is left under `name`.
        """
        ...

    def read(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The blob's bytes from start (inclusive) to end (exclusive; None: to its end), reading no others;
        raises BlobMissing (on first iteration at the latest) if it is gone."""
        ...

    def local_path(self, name: str) -> Path | None:
        """The blob as a local file, for stores that keep files; None otherwise."""
        ...

    async def delete(self, names: list[str]) -> None:
        """Remove blobs; names already gone are fine."""
        ...

    async def forget_made(self) -> None:
        """Undo what open() made, for a store refused once open (the database's pairing check): an empty
        bucket it created, say, which a misspelt name would otherwise leave behind."""
        ...

    async def mark(self) -> str | None:
        """The deployment mark kept beside the blobs (pairing.py); None if none was ever written."""
        ...

    async def write_mark(self, mark: str) -> None:
        """Keep `mark` as the deployment mark, durable on return; writing the same one again is harmless."""
        ...


class BlobMissing(Exception):
    """A blob named by a record was not found: deleted after the record was read, past the grace period."""
