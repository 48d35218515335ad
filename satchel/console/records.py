"""Console pages for records: one record with its preview, its raw body, uploads and deletion.

A preview (preview_of) is what both the record's own page and the panel beside a store's record list show:
text and JSON escaped by the templates and cut at PREVIEW_BYTES, an image fitted to its box, anything else
a download link.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from satchel.console.forms import (
    FORM_SLACK,
    MAX_PARTS,
    StreamedForm,
    one_chunk,
    read_form,
    record_path,
    redirect,
    store_path,
)
from satchel.console.snippets import base_url
from satchel.errors import InvalidRequest, SatchelError
from satchel.service.access import Caller, Level
from satchel.service.encoding import plain_stream, read_prefix
from satchel.service.records import Records
from satchel.service.records_zip import zip_stream
from satchel.service.signing import DEFAULT_LINK_SECONDS, expires_in, expiring_record_signature
from satchel.service.validation import SHOWN, check_key
from satchel.storage import RecordHead, RecordRead, StoreRow

if TYPE_CHECKING:
    from satchel.console.app import Console

PREVIEW_BYTES = 256 * 1024
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/ld+json")
CHARSET = re.compile(r"""charset\s*=\s*("?[A-Za-z0-9._:-]{1,40}"?)""", re.IGNORECASE)
# A place in a store's record list (record_list.py): what a record's Delete takes back there.
LIST_PLACE = frozenset(("prefix", "offset", "after", "skipped", "back"))
# Record bodies shown raw: sandboxed, so stored HTML or SVG cannot run script on this origin; and not kept by
# the browser. A body served from a file has Last-Modified and an ETag, from which a browser works out a
# freshness of its own (a tenth of its age) and reuses it unasked: a record replaced since showed its old
# image beside its new size, and a private body could be read from the cache after signing out.
RAW_HEADERS = {
    "content-security-policy": "sandbox",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


async def upload(console: Console, request: Request, caller: Caller) -> Response:
    """Store the posted file, or the typed value, as a record.

    The file streams from the request into storage as it arrives (forms.StreamedForm): a body over
    max_record_bytes is refused by its Content-Length before any of it is read, or as soon as it passes the
    limit, and nothing is kept anywhere storage does not keep bodies. The record is written only once the
    whole form has arrived and was understood.
    """
    ref = request.path_params["store"]
    records = console.services.records
    form: StreamedForm | None = None
    try:
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            # A typed value posted without multipart (a script; the page sends multipart): fields only.
            fields = await read_form(request, fields=MAX_PARTS, limit=FORM_SLACK)
            key = await _store_value(
                records, caller, ref, {k: v for k, v in fields.items() if isinstance(v, str)}
            )
        else:
            form = StreamedForm(request, max_file=records.max_record_bytes)
            key = await _store_upload(records, caller, ref, form)
    except SatchelError as error:
        response = console.error(request, caller, error)
        if form is None or not form.complete:
            response.headers["connection"] = "close"  # the rest of the body may still be on its way
        return response
    return redirect(record_path(ref, key), "saved")


async def _store_upload(records: Records, caller: Caller, ref: str, form: StreamedForm) -> str:
    """Read the form's fields up to its file, then stream the file into the record; the key and content type
    must come before the file (the Console's form sends them first)."""
    fields: dict[str, str] = {}
    while (part := await form.next_part()) is not None:
        if part.filename is None:
            fields[part.name] = await form.value()
        elif part.name == "file" and part.filename:  # a file input left empty has no name and no data
            key = fields.get("key", "").strip() or _key_of_file(part.filename)
            content_type = fields.get("contentType", "").strip() or part.content_type
            chunks = _file_then_rest(form)
            await records.put(
                caller, ref, key, content_type=content_type, content_encoding=None, chunks=chunks
            )
            return key
    return await _store_value(records, caller, ref, fields)


def _key_of_file(name: str) -> str:
    """A file's name as the key it is stored under when none was typed, or what to do about it."""
    try:
        return check_key(name)
    except InvalidRequest as error:
        message = f"{error.message} It is the file's name ({name[:SHOWN]!r}): type a key for it in the form."
        raise InvalidRequest(message, type=error.type) from error


async def _store_value(records: Records, caller: Caller, ref: str, fields: dict[str, str]) -> str:
    """Store the form's typed value (`text`). A browser sends a text box's line breaks as CRLF whatever was
    typed (HTML's form encoding); they are stored as the LF the user saw."""
    key, text = fields.get("key", "").strip(), fields.get("text", "").replace("\r\n", "\n")
    if not text:
        raise InvalidRequest("Choose a file or type a value to store.")
    if not key:
        raise InvalidRequest("Give the record a key.", type="invalid-record-key")
    content_type = fields.get("contentType", "").strip() or "text/plain; charset=utf-8"
    await records.put(
        caller, ref, key, content_type=content_type, content_encoding=None, chunks=one_chunk(text.encode())
    )
    return key


async def _file_then_rest(form: StreamedForm) -> AsyncIterator[bytes]:
    """The file's data, then the rest of the form read before the last chunk is through, so the record
    commits only for a whole form: one cut short, or with a key or type after its file, is refused."""
    async for chunk in form.data():
        yield chunk
    while (part := await form.next_part()) is not None:
        if part.filename is not None:
            if part.filename:
                raise InvalidRequest("Send one file at a time.")
            continue
        value = await form.value()
        if part.name in ("key", "contentType") and value.strip():
            raise InvalidRequest(f"The form's {part.name} came after its file; send it before the file.")
        if part.name == "text" and value:
            raise InvalidRequest("Choose a file or type a value, not both: which one to store is unclear.")


@dataclass(slots=True)
class Preview:
    head: RecordHead
    kind: str  # "text", "image" or "other"
    text: str | None = None  # for "text": escaped by the template, never marked safe
    cut: bool = False  # only the first PREVIEW_BYTES are shown
    public_url: str | None = None  # a signed API link that expires (writers only)
    store_id: str = ""

    @property
    def path(self) -> str:
        """The record's Console page; its body is at path + "/raw"."""
        return record_path(self.store_id, self.head.key)


async def preview_of(
    console: Console, caller: Caller, ref: str, key: str, *, store: StoreRow, have: Level
) -> Preview:
    """The record's head and what of it to show; only a text body is read (and counted as a read)."""
    head = await console.services.records.head(caller, ref, key)
    base = head.content_type.split(";")[0].strip().lower()
    preview = Preview(head, "other", store_id=store.id)
    if base.startswith(TEXT_TYPES) or base.endswith(("+json", "+xml")):
        _, found = await console.services.records.get(caller, ref, key)
        preview.head = found.head
        preview.kind = "text"
        preview.cut = found.head.raw_size > PREVIEW_BYTES
        preview.text = await _preview(found, pretty_json="json" in base and not preview.cut)
    elif base.startswith("image/"):
        preview.kind = "image"
    if have >= Level.WRITE:
        # A link that expires (a day), unlike the API clients' record links: see service/signing.py.
        secret, expiry = store.url_signing_secret_key, expires_in(DEFAULT_LINK_SECONDS)
        signature = quote(expiring_record_signature(secret, key, expiry), safe="")
        records_url = f"{console.services.settings.base_url}/v2/key-value-stores/{store.id}/records"
        preview.public_url = f"{records_url}/{quote(key, safe='')}?signature={signature}"
    return preview


async def record(console: Console, request: Request, caller: Caller) -> Response:
    ref, key = request.path_params["store"], request.path_params["key"]
    store, have = await console.services.stores.get(caller, ref)
    preview = await preview_of(console, caller, ref, key, store=store, have=have)
    return console.render(
        request,
        "record.html",
        caller,
        store=store,
        head=preview.head,
        level=have,
        Level=Level,
        preview=preview,
        api_url=f"{base_url(request)}/v2/key-value-stores/{store.id}/records/{quote(key, safe='')}",
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


async def download_all(console: Console, request: Request, caller: Caller) -> Response:
    """Every record of the store as one ZIP, for a reader of it (writers get the API's signed link)."""
    store, found = await console.services.records.all_records(
        caller, request.path_params["store"], prefix=None, collection=None
    )
    headers = {**RAW_HEADERS, "content-disposition": f'attachment; filename="{store.name or store.id}.zip"'}
    return StreamingResponse(zip_stream(store.id, found), media_type="application/zip", headers=headers)


async def delete(console: Console, request: Request, caller: Caller) -> Response:
    ref, key = request.path_params["store"], request.path_params["key"]
    await console.services.records.delete(caller, ref, key)
    # Back to the page of the list it was deleted from: the form's action carries its prefix and place (a
    # Referer may be left out, or name the store another way), without the record's preview.
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k in LIST_PLACE])
    return redirect(f"{store_path(ref)}?{query}" if query else store_path(ref), "deleted")


async def _preview(found: RecordRead, *, pretty_json: bool) -> str:
    raw_bytes = await read_prefix(found, PREVIEW_BYTES)
    if pretty_json:
        try:
            return orjson.dumps(orjson.loads(raw_bytes), option=orjson.OPT_INDENT_2).decode()
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # past 255 levels loads, but will not dump
            pass
    charset = CHARSET.search(found.head.content_type)
    if charset:
        # A charset Python does not know, or no text encoding at all, is a LookupError; a few it knows fail on
        # any bytes whatever the error handler says (`undefined`, `idna`, `punycode`): a UnicodeError.
        with contextlib.suppress(LookupError, UnicodeError):
            return raw_bytes.decode(charset.group(1).strip('"'), "replace")
    return raw_bytes.decode("utf-8", "replace")
