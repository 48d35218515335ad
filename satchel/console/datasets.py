"""Console pages for datasets: the list, one dataset with its items as a table, and its items as a download.

The table shows a page of rows (offset and limit, as the API reads them) with the fields chosen (the API's
`fields`), nested values as compact JSON. Downloads go through the Console with the session, in every format
the API writes, by the same export code; writers also get the API's own items URL, signed so that it reads
without a token (it expires in a day). The API token is never put into a page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from satchel.console.forms import PREFIX, listing, whole
from satchel.console.records import RAW_HEADERS
from satchel.console.stores import (
    Kind,
    create_of,
    delete_of,
    list_context,
    manage_context,
    pager,
    settings_of,
    share_of,
    signed_api_url,
)
from satchel.errors import InvalidRequest
from satchel.service.access import Caller
from satchel.service.item_formats import MEDIA_TYPES, ExportOptions, Format, ItemQuery, export, names

if TYPE_CHECKING:
    from satchel.console.app import Console

DATASETS = Kind(
    f"{PREFIX}/datasets",
    "dataset",
    "items",
    "dataset",
    lambda services: services.datasets.stores,
    "its items, in any format",
    "datasets",
)
DATASETS_PER_PAGE = 20
PAGE_SIZES = (10, 20, 50, 100, 500, 1000)
DEFAULT_PAGE_SIZE = 20
CELL_CHARS = 300  # a longer value is cut in the table (the downloads have it whole)
COLUMN_SAMPLE = 100  # the first items, whose fields give the table its columns in their order
# Columns shown unless the fields are named: 500 fields of 1,000 items made a page of 11.6 MB that took
# Chromium 20 s to lay out. The downloads, and the Fields box, reach the rest.
MAX_COLUMNS = 50

create = create_of(DATASETS)
settings = settings_of(DATASETS)
delete = delete_of(DATASETS)
share = share_of(DATASETS)


async def datasets(console: Console, request: Request, caller: Caller) -> Response:
    if request.method == "POST":
        return await create(console, request, caller)
    args = listing(request, DATASETS_PER_PAGE)
    found = await console.services.datasets.page(caller, args)
    rows = [(row, found.counts[row.pk]) for row, _ in found.page.items]
    context = list_context(DATASETS, args, found.page)
    return console.render(request, "datasets.html", caller, rows=rows, **context)


def _choice(request: Request) -> dict[str, Any]:
    """What the page's form chose: the fields, clean items only, newest first."""
    query = request.query_params
    return {
        "fields": ", ".join(names(query.get("fields"))),
        "clean": query.get("clean") == "1",
        "desc": query.get("desc") == "1",
    }


def _item_query(choice: dict[str, Any]) -> ItemQuery:
    clean = bool(choice["clean"])
    return ItemQuery(fields=names(choice["fields"]), skip_hidden=clean, skip_empty=clean)


def cell(value: Any) -> str:
    """A value as one table cell: text as it is, anything else as compact JSON, cut to CELL_CHARS."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


async def _columns(
    console: Console,
    caller: Caller,
    dataset_id: str,
    item_query: ItemQuery,
    items: list[tuple[int, dict[str, Any]]],
    *,
    first: int,
) -> list[str]:
    """The table's columns: the fields of the dataset's first COLUMN_SAMPLE items in the order they come, then
    any other field of this page's items, so that a field keeps its place from page to page (each page's own
    fields alone moved them about, and dropped a column wherever a page lacked it). `first`: how many of the
    first items this page already read (its size, when it is the first page in order; else 0), which are
    not read again."""
    sample: list[dict[str, Any]] = []
    if first < COLUMN_SAMPLE:
        read = await console.services.datasets.read(
            caller, dataset_id, offset=first, limit=COLUMN_SAMPLE - first, desc=False
        )
        async for rows in read.pages():
            sample.extend(item for raw in rows for item in item_query.apply(orjson.loads(raw)))
    page = [item for _, item in items]
    ordered = [*page, *sample] if first else [*sample, *page]
    return list(dict.fromkeys(key for item in ordered for key in item))


async def dataset(console: Console, request: Request, caller: Caller) -> Response:
    ref = request.path_params["store"]
    query = request.query_params
    offset = whole(query.get("offset"))
    limit = whole(query.get("limit")) or DEFAULT_PAGE_SIZE
    if limit not in PAGE_SIZES:
        limit = min(max(limit, 1), max(PAGE_SIZES))
    choice = _choice(request)
    item_query = _item_query(choice)
    # Looked up afresh (not the hot path's cached row), so its counts include the latest pushes.
    view = await console.services.datasets.get(caller, ref)
    read = await console.services.datasets.read(
        caller, view.store.id, offset=offset, limit=limit, desc=bool(choice["desc"])
    )
    # Each row is numbered by its place in the dataset; `clean` may leave a row with no item.
    first = read.total - read.offset - 1 if read.desc else read.offset
    step = -1 if read.desc else 1
    items: list[tuple[int, dict[str, Any]]] = []
    position = first
    async for rows in read.pages():
        for raw in rows:
            items.extend((position, item) for item in item_query.apply(orjson.loads(raw)))
            position += step
    first_page = read.offset == 0 and not read.desc
    columns = list(item_query.fields) or await _columns(
        console, caller, view.store.id, item_query, items, first=limit if first_page else 0
    )
    all_columns = len(columns)
    if not item_query.fields:
        columns = columns[:MAX_COLUMNS]
    table = [(number, [(c in item, cell(item.get(c))) for c in columns]) for number, item in items]
    row = view.store
    chosen = {
        "fields": choice["fields"],
        "clean": "1" if choice["clean"] else "",
        "desc": "1" if choice["desc"] else "",
    }
    chosen = {k: v for k, v in chosen.items() if v}
    previous, next_page = pager(offset, limit, read.total)
    return console.render(
        request,
        "dataset.html",
        caller,
        store=row,
        counts=view.counts,
        columns=columns,
        all_columns=all_columns,
        table=table,
        offset=offset,
        limit=limit,
        page_sizes=PAGE_SIZES,
        total=read.total,
        count=read.count,
        choice=choice,
        chosen=chosen,
        formats=list(Format),
        api_url=f"{console.services.settings.base_url}/v2/datasets/{row.id}",
        signed_items_url=signed_api_url(console, "datasets", row, view.level, "/items"),
        previous=previous,
        next=next_page,
        **await manage_context(console, caller, DATASETS, row.id, view.level),
    )


async def download(console: Console, request: Request, caller: Caller) -> Response:
    """All the items, with the fields and cleaning the page chose, as a file in the format asked for."""
    raw_format = (request.query_params.get("format") or "json").lower()
    if raw_format not in Format.__members__.values():
        raise InvalidRequest(f"The format must be one of {', '.join(Format)}.")
    choice = _choice(request)
    read = await console.services.datasets.read(
        caller, request.path_params["store"], offset=0, limit=None, desc=bool(choice["desc"])
    )
    store = read.store
    name = store.name or store.id
    format_ = Format(raw_format)
    options = ExportOptions(
        format=format_, title=name, link=f"{console.services.settings.base_url}/v2/datasets/{store.id}/items"
    )
    # The users' data in HTML, XML and more, read in a session: as a record's body is.
    headers = {**RAW_HEADERS, "content-disposition": f'attachment; filename="{name}.{format_}"'}
    return StreamingResponse(
        export(read.pages, _item_query(choice), options), media_type=MEDIA_TYPES[format_], headers=headers
    )
