"""Reading an upload into the shape a metadata engine commits: inline bytes, or a blob already written.

Every engine takes a body the same way: up to the inline limit in memory; past it, the engine notes the
upload (so a crash leaves a name its housekeeping will find), and the blob store writes the whole body under
a fresh name before the metadata commit that makes it visible.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from satchel.errors import TooLarge, Unavailable
from satchel.storage.blobs.base import BlobStore
from satchel.storage.body import UploadBody


@dataclass(slots=True)
class Spooled:
    data: bytes | None  # the whole body, when small enough to keep inline
    blob: str | None  # else the blob it was written to
    size: int


def new_blob_name() -> str:
    return secrets.token_hex(16)


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"The record is larger than the limit of {limit} bytes.")


async def spool(
    body: UploadBody,
    blobs: BlobStore,
    *,
    inline_max: int,
    max_bytes: int,
    begin_upload: Callable[[str], Awaitable[None]],
    drop: Callable[[list[str]], Awaitable[None]],
) -> Spooled:
    """Read the body to its end; raises TooLarge past max_bytes, leaving no blob behind.

    `begin_upload` notes a blob's name before it is written; `drop` removes a blob and forgets its name (best
    effort: what it cannot do, housekeeping does once the upload is old).
    """
    chunks = aiter(body)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        parts.append(chunk)
        if size > inline_max:
            break
    else:
        return Spooled(b"".join(parts), None, size)

    async def whole() -> AsyncIterator[bytes]:
        total = size
        yield b"".join(parts)
        parts.clear()
        async for chunk in chunks:
            total += len(chunk)
            if total > max_bytes:
                raise _too_large(max_bytes)
            yield chunk

    name = new_blob_name()
    await begin_upload(name)
    try:
        written = await blobs.put(name, whole())
    except Unavailable:
        # The blob store does not answer: a delete now would only wait out its timeout a second time before
        # the caller hears. The upload stays noted, so housekeeping removes anything left once it is old.
        raise
    except Exception:
        await drop([name])
        raise
    return Spooled(None, name, written)
