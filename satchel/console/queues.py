"""Console pages for request queues: the list, one queue (its counts, head and requests), one request.

The Console only looks: it reads the head and the requests through the service's head and list calls, as
the API does, with `as_client=False`. A person looking at a queue is not a crawler taking from it, and must
not turn its hadMultipleClients on (the SDK reads that to decide whether its local cache can be trusted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from satchel.clock import now_ms
from satchel.console.forms import PREFIX, listing
from satchel.console.stores import (
    Kind,
    create_of,
    delete_of,
    list_context,
    manage_context,
    settings_of,
    share_of,
)
from satchel.service.access import Caller
from satchel.service.queue_requests import FILTERS, make_cursor
from satchel.storage.rows import RequestRow

if TYPE_CHECKING:
    from satchel.console.app import Console

QUEUES = Kind(
    f"{PREFIX}/request-queues",
    "request queue",
    "requests",
    "queue",
    lambda services: services.queues.stores,
    plural="request queues",
    # A queue's own clock of changes is kept beside it (its state), not on the store's row.
    sorts=("name", "createdAt"),
)
QUEUES_PER_PAGE = 20
HEAD_ROWS = 20
REQUESTS_PER_PAGE = 50

create = create_of(QUEUES)
settings = settings_of(QUEUES)
delete = delete_of(QUEUES)
share = share_of(QUEUES)


async def queues(console: Console, request: Request, caller: Caller) -> Response:
    if request.method == "POST":
        return await create(console, request, caller)
    args = listing(request, QUEUES_PER_PAGE)
    found = await console.services.queues.page(caller, args)
    rows = [(row, found.states.get(row.pk)) for row, _ in found.page.items]
    context = list_context(QUEUES, args, found.page)
    return console.render(request, "queues.html", caller, rows=rows, **context)


def summary(row: RequestRow, now: int) -> dict[str, object]:
    """A request as a line of a table: what it is, and where it stands."""
    body = orjson.loads(row.body)
    locked = row.lock_expires_at is not None and row.lock_expires_at > now
    return {
        "id": row.id,
        "url": body.get("url"),
        "method": body.get("method") or "GET",
        "retry_count": body.get("retryCount", 0),
        "handled_at": row.handled_at,
        "locked_until": row.lock_expires_at if locked else None,
    }


async def queue(console: Console, request: Request, caller: Caller) -> Response:
    ref = request.path_params["store"]
    queues = console.services.queues
    view = await queues.get(caller, ref)
    row, state = view.store, view.state
    head = await queues.head(caller, row.id, limit=HEAD_ROWS, client_key=None, as_client=False)
    query = request.query_params
    cursor = query.get("cursor") or None
    shown = query.get("filter") or ""
    if shown not in FILTERS:
        shown = ""
    page = await queues.list_requests(
        caller, row.id, limit=REQUESTS_PER_PAGE, cursor=cursor, exclusive_start_id=None,
        filters=shown or None, client_key=None, as_client=False,
    )  # fmt: skip
    now = now_ms()
    return console.render(
        request,
        "queue.html",
        caller,
        store=row,
        state=state,
        pending=state.total - state.handled,
        modified_at=max(row.modified_at, state.modified_at),
        head=[summary(r, now) for r in head.items],
        head_rows=HEAD_ROWS,
        requests=[summary(r, now) for r in page.items],
        cursor=cursor,
        next_cursor=make_cursor(page.next_after) if page.next_after else None,
        filter=shown,
        api_url=f"{console.services.settings.base_url}/v2/request-queues/{row.id}",
        **await manage_context(console, caller, QUEUES, row.id, view.level),
    )


async def queue_request(console: Console, request: Request, caller: Caller) -> Response:
    ref, rid = request.path_params["store"], request.path_params["request"]
    view = await console.services.queues.get(caller, ref)
    found = await console.services.queues.get_request(caller, view.store.id, rid)
    now = now_ms()
    body = orjson.loads(found.body)
    return console.render(
        request,
        "request.html",
        caller,
        store=view.store,
        request_row=found,
        url=body.get("url"),
        unique_key=body.get("uniqueKey"),
        locked=found.lock_expires_at is not None and found.lock_expires_at > now,
        document=orjson.dumps(body, option=orjson.OPT_INDENT_2).decode(),
        api_url=f"{console.services.settings.base_url}/v2/request-queues/{view.store.id}/requests/{found.id}",
    )
