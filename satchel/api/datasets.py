"""Dataset endpoints: the collection, one dataset, its items (push and read in every format), statistics.

Choices where the reference and the clients disagree:
- A list item's `name` is a string, as apify-client 3.4 requires (`DatasetListItem.name: str`; null fails its
  validation): an unnamed dataset, listed with `unnamed=true`, shows `name: ""` there. Names are never empty,
  so "" means unnamed, and it is falsy in Python and JavaScript as null is. A dataset's own object (GET, PUT,
  POST) has `name: null` when unnamed, which the clients accept there.
- Every items response carries all five `X-Apify-Pagination-*` headers (the Python client needs `Desc` too,
  literal true/false), whatever the format. Count is the rows scanned for the page, before filters and unwind,
  so iterating clients move past pages that filters emptied.
- `limit` is never refused for being large: 999999999999 (what the clients send for "all") and above mean all.
- Pushes may be up to `max_items_payload_bytes` decoded (10 MiB; the reference says 5 MB, clients send 9 MiB).
  A push answers 201 with `Location` (the items URL) and the body `{}`, as the reference shows.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from satchel.api import wire
from satchel.api.http import Call, RawResponse, body_chunks, content_encoding, declared_length, read_creation
from satchel.api.http import read_json_object as read_changes
from satchel.clock import iso
from satchel.errors import InvalidRequest
from satchel.service.access import Level
from satchel.service.datasets import UNLIMITED, DatasetView, ItemsRead, view_transformation
from satchel.service.item_formats import MEDIA_TYPES, ExportOptions, Format, ItemQuery, export, names
from satchel.service.item_formats.text import xml_name
from satchel.service.item_formats.transform import SIMPLIFIED_FIELDS, SIMPLIFIED_UNWIND
from satchel.service.signing import storage_signature
from satchel.service.validation import is_digits
from satchel.storage import StoreRow

PUSHED = b"{}"
# Exported items are the users' data in HTML, XML and more: never run as script on Satchel's origin.


def dataset_url(base_url: str, dataset_id: str) -> str:
    return f"{base_url}/v2/datasets/{dataset_id}"


def dataset(view: DatasetView, base_url: str, *, listed: bool = False) -> dict[str, Any]:
    """A dataset as the API shows it; `listed`, as an item of a list (no schema, name always a string)."""
    row, counts = view.store, view.counts
    writer = view.level >= Level.WRITE  # the signing secret and signed URLs go only to writers
    items_url = f"{dataset_url(base_url, row.id)}/items"
    if writer:
        items_url += f"?signature={storage_signature(row.url_signing_secret_key, row.id)}"
    data: dict[str, Any] = {
        "id": row.id,
        "name": (row.name or "") if listed else row.name,
        "title": row.title,
        "userId": row.user_id,
        "username": row.username,
        "createdAt": iso(row.created_at),
        "modifiedAt": iso(row.modified_at),
        "accessedAt": iso(row.accessed_at),
        "itemCount": counts.item_count,
        "cleanItemCount": counts.clean_item_count,
        "actId": row.act_id,
        "actRunId": row.act_run_id,
        "consoleUrl": f"{base_url}/console/datasets/{row.id}",
        "itemsPublicUrl": items_url,
        "generalAccess": row.general_access,
        "stats": {
            "readCount": row.stats.read_count,
            "writeCount": row.stats.write_count,
            "storageBytes": row.stats.storage_bytes,
        },
    }
    if row.schema is not None and not listed:
        data["schema"] = orjson.loads(row.schema)
    if writer:
        data["urlSigningSecretKey"] = row.url_signing_secret_key
    return data


async def list_datasets(call: Call) -> Response:
    args = call.listing()
    found = await call.services.datasets.page(call.caller, args)

    def item(row: StoreRow, level: Level) -> dict[str, Any]:
        return dataset(DatasetView(row, level, found.counts[row.pk]), call.base_url, listed=True)

    return await wire.page_response(
        lambda: wire.storage_page(found.page, unnamed=args.unnamed, item=item), len(found.page.items)
    )


async def create_dataset(call: Call) -> Response:
    name, body = await read_creation(call)
    view, created = await call.services.datasets.get_or_create(call.caller, name, body.get("schema"))
    headers = {"location": dataset_url(call.base_url, view.store.id)}
    return wire.json_response(dataset(view, call.base_url), 201 if created else 200, headers)


async def get_dataset(call: Call) -> Response:
    view = await call.services.datasets.get(call.caller, call.params["datasetId"])
    return wire.json_response(dataset(view, call.base_url))


async def update_dataset(call: Call) -> Response:
    changes = await read_changes(call.request)
    view = await call.services.datasets.update(call.caller, call.params["datasetId"], changes)
    return wire.json_response(dataset(view, call.base_url))


async def delete_dataset(call: Call) -> Response:
    await call.services.datasets.delete(call.caller, call.params["datasetId"])
    return Response(status_code=204)


async def statistics(call: Call) -> Response:
    stats = await call.services.datasets.statistics(call.caller, call.params["datasetId"])
    return wire.json_response(stats)


async def push_items(call: Call) -> Response:
    store = await call.services.datasets.push(
        call.caller,
        call.params["datasetId"],
        chunks=body_chunks(call.request),
        content_encoding=content_encoding(call.request),
        declared_size=declared_length(call.request),
    )
    location = f"{dataset_url(call.base_url, store.id)}/items".encode("latin-1")
    headers = [
        (b"location", location),
        (b"content-length", str(len(PUSHED)).encode()),
        (b"content-type", wire.JSON.encode()),
    ]
    return RawResponse(PUSHED, 201, headers)


def _limit(call: Call) -> int | None:
    """`limit` as sent; any count of digits is taken (and clamped later), never refused for its size."""
    value = (call.query.get("limit") or "").strip()
    if not value:
        return None
    if is_digits(value):
        return min(int(value[:15]), UNLIMITED) if len(value) <= 15 else UNLIMITED
    return call.number("limit", 0)  # a decimal like 10.0, or a 400 for what is no count at all


def _options(call: Call) -> ExportOptions:
    raw_format = (call.query.get("format") or "json").lower()
    if raw_format not in Format.__members__.values():
        raise InvalidRequest(f"Parameter `format` must be one of {', '.join(Format)}.", type="invalid-value")
    delimiter = call.query.get("delimiter") or ","
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise InvalidRequest("Parameter `delimiter` must be one character (not a quote or a line break).")
    names_given = {}
    for param, default in (("xmlRoot", "items"), ("xmlRow", "item")):
        value = call.query.get(param) or default
        if xml_name(value) != value or len(value) > 200:
            raise InvalidRequest(f"Parameter `{param}` must be an XML element name.", type="invalid-value")
        names_given[param] = value
    bom = call.flag("bom") if call.query.get("bom") else None
    return ExportOptions(
        format=Format(raw_format),
        bom=bom,
        delimiter=delimiter,
        skip_header_row=call.flag("skipHeaderRow"),
        xml_root=names_given["xmlRoot"],
        xml_row=names_given["xmlRow"],
    )


def _query(call: Call, read: ItemsRead) -> ItemQuery:
    chosen: dict[str, tuple[str, ...]] = {}
    if view := call.text("view"):
        chosen.update(view_transformation(read.store, view))
    if call.flag("simplified"):
        chosen.update(fields=SIMPLIFIED_FIELDS, unwind=SIMPLIFIED_UNWIND)
    for param in ("fields", "omit", "unwind", "flatten"):
        if call.query.get(param):
            chosen[param] = names(call.query[param])
    clean = call.flag("clean")
    return ItemQuery(
        **chosen,
        skip_hidden=clean or call.flag("skipHidden"),
        skip_empty=clean or call.flag("skipEmpty"),
        skip_failed_pages=call.flag("skipFailedPages"),
    )


async def get_items(call: Call) -> Response:
    options = _options(call)
    for flag in ("clean", "skipHidden", "skipEmpty", "skipFailedPages", "simplified", "attachment"):
        call.flag(flag)  # a bad boolean is a 400 before anything is read
    read = await call.services.datasets.read(
        call.caller,
        call.params["datasetId"],
        offset=call.number("offset", 0),
        limit=_limit(call),
        desc=call.flag("desc"),
        signature=call.text("signature"),
    )
    query = _query(call, read)
    store = read.store
    name = store.name or store.id
    items_url = f"{dataset_url(call.base_url, store.id)}/items"
    options = dataclasses.replace(options, title=name, link=items_url)
    headers = {
        **wire.UNTRUSTED,
        "x-apify-pagination-offset": str(read.offset),
        "x-apify-pagination-limit": str(read.limit),
        "x-apify-pagination-count": str(read.count),
        "x-apify-pagination-total": str(read.total),
        "x-apify-pagination-desc": "true" if read.desc else "false",
    }
    if call.flag("attachment"):
        headers["content-disposition"] = f'attachment; filename="{name}.{options.format}"'
    return StreamingResponse(
        export(read.pages, query, options), media_type=MEDIA_TYPES[options.format], headers=headers
    )
