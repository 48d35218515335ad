"""Record endpoints: get, head, put, delete, and all records as one ZIP archive."""

from __future__ import annotations

import logging
import time
import zipfile
from collections.abc import AsyncIterator
from urllib.parse import quote

import orjson
from starlette.responses import FileResponse, Response, StreamingResponse

from satchel.api import wire
from satchel.api.http import Call, RawResponse, body_chunks, content_encoding, declared_length
from satchel.errors import NotFound
from satchel.service.encoding import plain_stream
from satchel.service.records import RECORD_NOT_FOUND, RecordChanged
from satchel.storage import RecordHead, RecordRead
from satchel.storage.blobs.base import BlobMissing
from satchel.storage.body import started

log = logging.getLogger("satchel.api")
Headers = list[tuple[bytes, bytes]]
# Every record response carries these; stored HTML must never run as script on Satchel's origin.
FIXED = [
    (b"vary", b"Accept-Encoding"),
    (b"content-security-policy", b"sandbox"),
    (b"x-content-type-options", b"nosniff"),
]
CREATED = orjson.dumps({"data": {}})
CREATED_HEADERS = [(b"content-length", str(len(CREATED)).encode()), (b"content-type", wire.JSON.encode())]


def accepts(accept_encoding: str | None, encoding: str) -> bool:
    """Whether an Accept-Encoding header admits the encoding (by name or `*`, with a non-zero q)."""
    if not accept_encoding:
        return False
    wildcard = False
    for part in accept_encoding.lower().split(","):
        name, *params = part.strip().split(";")
        q = 1.0
        for param in params:
            # q may sit among other parameters ("gzip;level=1;q=0.5"); an unreadable one counts as 0.
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        name = name.strip()
        if name == encoding or (encoding == "gzip" and name == "x-gzip"):
            return q > 0
        if name == "*":
            wildcard = q > 0
    return wildcard


def _headers(call: Call, head: RecordHead, *, encoded: bool) -> Headers:
    """A record response's headers, as the raw list the ASGI server sends."""
    headers = [
        (b"content-type", head.content_type.encode("latin-1")),
        *FIXED,
        (b"content-length", str(head.size if encoded else head.raw_size).encode()),
    ]
    if encoded and head.content_encoding:
        headers.append((b"content-encoding", head.content_encoding.encode()))
    if call.flag("attachment"):
        disposition = f"attachment; filename=\"{head.key}\"; filename*=UTF-8''{quote(head.key)}"
        headers.append((b"content-disposition", disposition.encode("latin-1")))
    return headers


def _as_dict(headers: Headers) -> dict[str, str]:
    return {name.decode(): value.decode("latin-1") for name, value in headers}


def _encoded(call: Call, head: RecordHead) -> bool:
    """Whether the stored bytes go out as they are: no encoding, or one the client accepts."""
    return head.content_encoding is None or accepts(call.header(b"accept-encoding"), head.content_encoding)


async def get_record(call: Call) -> Response:
    _, record = await call.services.records.get(
        call.caller, call.params["storeId"], call.params["recordKey"], signature=call.text("signature")
    )
    head = record.head
    encoded = _encoded(call, head)
    headers = _headers(call, head, encoded=encoded)
    if encoded and record.inline is not None:
        return RawResponse(record.inline, 200, headers)
    if encoded and (local := record.local_file()) is not None:
        # The fast path for blobs kept as local files: sent by the server without passing through Python.
        path, stat = local
        return FileResponse(path, headers=_as_dict(headers), media_type=head.content_type, stat_result=stat)
    chunks = record.stream() if encoded else plain_stream(record)
    try:
        body = await started(chunks)
    except BlobMissing as exc:  # replaced or deleted since it was looked up, past the grace period
        raise NotFound(RECORD_NOT_FOUND) from exc
    return StreamingResponse(body, headers=_as_dict(headers), media_type=head.content_type)


async def head_record(call: Call) -> Response:
    head = await call.services.records.head(
        call.caller, call.params["storeId"], call.params["recordKey"], signature=call.text("signature")
    )
    return RawResponse(b"", 200, _headers(call, head, encoded=_encoded(call, head)))


async def put_record(call: Call) -> Response:
    store, _ = await call.services.records.put(
        call.caller,
        call.params["storeId"],
        call.params["recordKey"],
        content_type=call.header(b"content-type"),
        content_encoding=content_encoding(call.request),
        chunks=body_chunks(call.request),
        declared_size=declared_length(call.request),
    )
    location = wire.record_url(call.base_url, store.id, call.params["recordKey"]).encode("latin-1")
    return RawResponse(CREATED, 201, [(b"location", location), *CREATED_HEADERS])


async def delete_record(call: Call) -> Response:
    await call.services.records.delete(call.caller, call.params["storeId"], call.params["recordKey"])
    return Response(status_code=204)


class _Sink:
    """A write-only file for zipfile that hands out what was written since the last look."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
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
        return out


async def _zip_stream(store_id: str, records: AsyncIterator[RecordRead]) -> AsyncIterator[bytes]:
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
                    if len(sink.parts) > 16:
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


async def download_records(call: Call) -> Response:
    store, records = await call.services.records.all_records(
        call.caller,
        call.params["storeId"],
        prefix=call.text("prefix"),
        collection=call.text("collection"),
        signature=call.text("signature"),
    )
    name = store.name or store.id
    headers = {
        "content-disposition": f'attachment; filename="{name}.zip"',
        "x-content-type-options": "nosniff",
    }
    return StreamingResponse(_zip_stream(store.id, records), media_type="application/zip", headers=headers)
