"""Record endpoints: get, head, put, delete, and all records as one ZIP archive.

Reads carry ETag and Last-Modified and answer conditional requests and Range (api/conditions.py says how);
writes and deletes honour If-Match and If-None-Match, checked by the engine as it commits. A request with none
of those headers gets the answer it always got, plus ETag, Last-Modified and Accept-Ranges, at the cost of one
pass over its header list (the ETag comes with the record's row: no extra query).
"""

from __future__ import annotations

from urllib.parse import quote

import orjson
from starlette.responses import FileResponse, Response, StreamingResponse

from satchel.api import wire
from satchel.api.conditions import (
    Conditions,
    Unsatisfiable,
    Verdict,
    byte_range,
    conditions,
    http_date,
    read_verdict,
    write_condition,
)
from satchel.api.errors import error_response
from satchel.api.http import Call, RawResponse, body_chunks, content_encoding, declared_length
from satchel.errors import NotFound
from satchel.service.encoding import plain_stream
from satchel.service.records import RECORD_NOT_FOUND
from satchel.service.records_zip import zip_stream
from satchel.storage import RecordHead, RecordRead
from satchel.storage.blobs.base import BlobMissing
from satchel.storage.body import started
from satchel.storage.conditions import PreconditionFailed

Headers = list[tuple[bytes, bytes]]
# Every record response carries these (a stored body is wire.UNTRUSTED). A record can be replaced at any
# moment, so a browser or proxy that keeps a copy (a signed or public link, say) asks again before each use:
# without Cache-Control it may reuse the copy for a tenth of its age, and the ETag makes asking again a 304.
REVALIDATE = (b"cache-control", b"no-cache")
VARY = (b"vary", b"Accept-Encoding")
FIXED = [VARY, REVALIDATE, *((k.encode(), v.encode()) for k, v in wire.UNTRUSTED.items())]
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


def _etag(head: RecordHead, *, encoded: bool) -> bytes:
    """The ETag of what goes out: strong for the stored bytes, weak for a decoded copy of them."""
    tag = f'"{head.etag}"'.encode()
    return tag if encoded else b"W/" + tag


def _headers(
    call: Call, head: RecordHead, *, encoded: bool, etag: bytes, length: int | None = None
) -> Headers:
    """A record response's headers, as the raw list the ASGI server sends."""
    if length is None:
        length = head.size if encoded else head.raw_size
    headers = [
        (b"content-type", head.content_type.encode("latin-1")),
        *FIXED,
        (b"content-length", str(length).encode()),
        (b"etag", etag),
        (b"last-modified", http_date(head.modified_at // 1000).encode()),
        # Ranges of the stored bytes are served only when those are the content (no Content-Encoding).
        (b"accept-ranges", b"bytes" if head.content_encoding is None else b"none"),
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


def _judged(found: Conditions, head: RecordHead, etag: bytes, *, encoded: bool) -> Response | None:
    """The answer the preconditions of a GET or HEAD give (304, or 412 raised), or None to go on."""
    verdict = read_verdict(found, head.etag or "", weak=not encoded, modified_at=head.modified_at)
    if verdict is Verdict.FAILED:
        raise PreconditionFailed("The record's ETag does not match If-Match; it was changed or deleted.")
    if verdict is Verdict.NOT_MODIFIED:
        last_modified = http_date(head.modified_at // 1000).encode()
        return RawResponse(b"", 304, [(b"etag", etag), (b"last-modified", last_modified), VARY, REVALIDATE])
    return None


async def _partial(call: Call, record: RecordRead, span: tuple[int, int], etag: bytes) -> Response:
    """206 with one range of a record stored without Content-Encoding; only that range is read."""
    head = record.head
    start, end = span
    headers = _headers(call, head, encoded=True, etag=etag, length=end - start)
    headers.append((b"content-range", f"bytes {start}-{end - 1}/{head.size}".encode()))
    if record.inline is not None:
        return RawResponse(record.inline[start:end], 206, headers)
    try:
        body = await started(record.slice(start, end))
    except BlobMissing as exc:
        raise NotFound(RECORD_NOT_FOUND) from exc
    return StreamingResponse(body, 206, headers=_as_dict(headers), media_type=head.content_type)


def _unsatisfiable(size: int) -> Response:
    response = error_response(
        416, "range-not-satisfiable", f"The range asked for starts past the end of the record ({size} bytes)."
    )
    response.headers["content-range"] = f"bytes */{size}"
    return response


async def get_record(call: Call) -> Response:
    _, record = await call.services.records.get(
        call.caller, call.params["storeId"], call.params["recordKey"], signature=call.text("signature")
    )
    head = record.head
    encoded = _encoded(call, head)
    etag = _etag(head, encoded=encoded)
    found = conditions(call.scope)
    if found is not None:
        if (judged := _judged(found, head, etag, encoded=encoded)) is not None:
            return judged
        if head.content_encoding is None:
            try:
                span = byte_range(found, head.size, head.etag or "", http_date(head.modified_at // 1000))
            except Unsatisfiable:
                return _unsatisfiable(head.size)
            if span is not None:
                return await _partial(call, record, span, etag)
    headers = _headers(call, head, encoded=encoded, etag=etag)
    if encoded and record.inline is not None:
        return RawResponse(record.inline, 200, headers)
    # FileResponse would act on a Range itself: with one (ignored, for the reasons above) the stream is used.
    if encoded and (found is None or found.range is None) and (local := record.local_file()) is not None:
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
    encoded = _encoded(call, head)
    etag = _etag(head, encoded=encoded)
    # Range is for GET alone (RFC 9110); a HEAD answers 200 with Accept-Ranges.
    found = conditions(call.scope)
    if found is not None and (judged := _judged(found, head, etag, encoded=encoded)) is not None:
        return judged
    return RawResponse(b"", 200, _headers(call, head, encoded=encoded, etag=etag))


async def put_record(call: Call) -> Response:
    store, head = await call.services.records.put(
        call.caller,
        call.params["storeId"],
        call.params["recordKey"],
        content_type=call.header(b"content-type"),
        content_encoding=content_encoding(call.request),
        chunks=body_chunks(call.request),
        declared_size=declared_length(call.request),
        condition=write_condition(conditions(call.scope)),
    )
    location = wire.record_url(call.base_url, store.id, call.params["recordKey"]).encode("latin-1")
    # The new ETag, so a compare-and-set loop can go on without reading the record back.
    etag = f'"{head.etag}"'.encode()
    return RawResponse(CREATED, 201, [(b"location", location), (b"etag", etag), *CREATED_HEADERS])


async def delete_record(call: Call) -> Response:
    await call.services.records.delete(
        call.caller,
        call.params["storeId"],
        call.params["recordKey"],
        condition=write_condition(conditions(call.scope)),
    )
    return Response(status_code=204)


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
    return StreamingResponse(zip_stream(store.id, records), media_type="application/zip", headers=headers)
