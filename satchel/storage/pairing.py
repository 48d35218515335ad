"""Whether a blob store is the one a database's records keep their bodies in.

Nothing else ties the two: a command run with the database's URL and no blob store (or another bucket) would
write large bodies where no server reads them, and read back "missing" for every one. Records that name
blobs are sampled and looked for; none found means the wrong store (or one that lost everything).
"""

from __future__ import annotations

from satchel.storage.base import RecordTable
from satchel.storage.blobs.base import BlobMissing, BlobStore

SAMPLE = 3


async def blobs_found(records: RecordTable, blobs: BlobStore) -> tuple[int, int]:
    """(blobs looked for, blobs found) among a few that records name; (0, 0) when none name a blob yet."""
    names = await records.some_blobs(SAMPLE)
    found = [name for name in names if await holds(blobs, name)]
    return len(names), len(found)


async def holds(blobs: BlobStore, name: str) -> bool:
    """Whether the blob store has the blob `name` (its first byte is read)."""
    try:
        async for _ in blobs.read(name, 0, 1):
            break
    except BlobMissing:
        return False
    return True
