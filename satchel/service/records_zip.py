"""A store's records as one ZIP archive, written as it is sent (the API's records download, the Console's)."""

from __future__ import annotations

import logging
import time
import zipfile
from collections.abc import AsyncIterator

from satchel.service.encoding import plain_stream
from satchel.service.records import RecordChanged
from satchel.storage import RecordRead

log = logging.getLogger("satchel.api")
# The most of a ZIP made ahead of the client: the server holds several pieces for a connection that reads
# slowly, so the piece's size sets the memory each such download keeps. Pieces of 16 reads (4 MiB) held
# 13 MiB per stalled download (400 of them took the server past 5 GiB, and a small GET to 16 s); pieces of
# one read (256 KiB), 6 MiB.
ZIP_PIECE = 256 * 1024


class _Sink:
    """A write-only file for zipfile that hands out what was written since the last look."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0
        self.held = 0  # bytes written since the last take()

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        self.held += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        self.held = 0
        return out


async def zip_stream(store_id: str, records: AsyncIterator[RecordRead]) -> AsyncIterator[bytes]:
    """The records as one ZIP archive, made as it is sent.

    Each record goes in exactly as it was listed or the archive is never finished: a body that cannot be read
    any more (RecordChanged) or is not its listed size raises here, before the central directory, and the
    server drops the connection mid-body. The client sees a failed transfer, never a valid archive that
    leaves a record out.
    """
    sink = _Sink()
    archive = zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)
    try:
        async for record in records:
            head = record.head
            info = zipfile.ZipInfo(head.key, date_time=_zip_time(head.modified_at))
            written = 0
            with archive.open(info, mode="w", force_zip64=head.raw_size > 2**31) as entry:
                async for chunk in plain_stream(record):
                    entry.write(chunk)
                    written += len(chunk)
                    if sink.held >= ZIP_PIECE:
                        yield sink.take()
                if written != head.raw_size:
                    raise RecordChanged(f"Record {head.key!r} is not the size it was listed with.")
            yield sink.take()
    except RecordChanged as error:
        # Not closed: the archive's end is never written, and the error ends the response unfinished.
        log.warning("ZIP of store %s not finished: %s", store_id, error.message)
        raise
    archive.close()
    yield sink.take()


def _zip_time(ms: int) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(ms / 1000)
    return (max(t.tm_year, 1980), t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
