"""Console pages for records: one record with its preview, its raw body, uploads and deletion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import quote

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from satchel.console.forms import (
    field,
    one_chunk,
    read_form,
    record_path,
    redirect,
    store_path,
    upload_chunks,
)
from satchel.errors import InvalidRequest
from satchel.service import Caller
from satchel.service.access import Level
from satchel.service.encoding import plain_stream, read_prefix
from satchel.service.signing import record_signature
from satchel.storage import RecordRead

if TYPE_CHECKING:
    from satchel.console.app import Console

PREVIEW_BYTES = 256 * 1024
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/ld+json")
# Record bodies shown raw: sandboxed, so stored HTML or SVG cannot run script on this origin.
RAW_HEADERS = {"content-security-policy": "sandbox", "x-content-type-options": "nosniff"}


async def upload(console: Console, request: Request, caller: Caller) -> Response:
    ref = request.path_params["store"]
    form = await read_form(request, files=1)
    key = field(form, "key")
    content_type = field(form, "contentType")
    file = form.get("file")
    text = form.get("text")
    chunks: AsyncIterator[bytes]
    if isinstance(file, UploadFile) and file.filename:
        chunks = upload_chunks(file)
        key = key or file.filename
        content_type = content_type or file.content_type or ""
    elif isinstance(text, str) and text:
        chunks = one_chunk(text.encode())
        content_type = content_type or "text/plain; charset=utf-8"
    else:
        raise InvalidRequest("Choose a file or type a value to store.")
    if not key:
        raise InvalidRequest("Give the record a key.", type="invalid-record-key")
    await console.services.records.put(
        caller, ref, key, content_type=content_type, content_encoding=None, chunks=chunks
    )
    return redirect(record_path(ref, key))


async def record(console: Console, request: Request, caller: Caller) -> Response:
    ref, key = request.path_params["store"], request.path_params["key"]
    store, have = await console.services.stores.get(caller, ref)
    _, found = await console.services.records.get(caller, ref, key)
    head = found.head
    base = head.content_type.split(";")[0].strip().lower()
    preview = None
    if (base.startswith(TEXT_TYPES) or base.endswith(("+json", "+xml"))) and head.raw_size <= PREVIEW_BYTES:
        preview = await _preview(found, pretty_json="json" in base)
    public_url = None
    if have >= Level.WRITE:
        signature = record_signature(store.url_signing_secret_key, key)
        records_url = f"{console.services.settings.base_url}/v2/key-value-stores/{store.id}/records"
        public_url = f"{records_url}/{quote(key, safe='')}?signature={signature}"
    return console.render(
        request,
        "record.html",
        caller,
        store=store,
        head=head,
        level=have,
        Level=Level,
        preview=preview,
        image=base.startswith("image/"),
        public_url=public_url,
    )


async def raw(console: Console, request: Request, caller: Caller) -> Response:
    ref, key = request.path_params["store"], request.path_params["key"]
    _, found = await console.services.records.get(caller, ref, key)
    head = found.head
    headers = dict(RAW_HEADERS)
    if request.query_params.get("download"):
        headers["content-disposition"] = f"attachment; filename*=UTF-8''{quote(key)}"
    if head.content_encoding is None and found.inline is not None:
        return Response(found.inline, headers=headers, media_type=head.content_type)
    if head.content_encoding is None and (local := found.local_file()) is not None:
        path, stat = local
        return FileResponse(path, headers=headers, media_type=head.content_type, stat_result=stat)
    return StreamingResponse(plain_stream(found), headers=headers, media_type=head.content_type)


async def delete(console: Console, request: Request, caller: Caller) -> Response:
    ref, key = request.path_params["store"], request.path_params["key"]
    await console.services.records.delete(caller, ref, key)
    return redirect(store_path(ref))


async def _preview(found: RecordRead, *, pretty_json: bool) -> str:
    raw_bytes = await read_prefix(found, PREVIEW_BYTES)
    if pretty_json:
        try:
            return orjson.dumps(orjson.loads(raw_bytes), option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONDecodeError:
            pass
    return raw_bytes.decode("utf-8", "replace")
