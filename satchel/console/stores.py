"""Console pages for stores: the list, one store with its keys, settings, sharing and deletion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from satchel.console.forms import STORES, field, read_form, redirect, store_path, whole
from satchel.errors import InvalidRequest
from satchel.service import Caller
from satchel.service.access import GENERAL_ACCESS, Level
from satchel.service.signing import DEFAULT_LINK_SECONDS, expires_in, storage_signature

if TYPE_CHECKING:
    from satchel.console.app import Console

STORES_PER_PAGE = 50
KEYS_PER_PAGE = 100


async def stores(console: Console, request: Request, caller: Caller) -> Response:
    if request.method == "POST":
        name = field(await read_form(request), "name") or None
        store, _ = await console.services.stores.get_or_create(caller, name, None)
        return redirect(store_path(store.id))
    query = request.query_params
    ownership = query.get("ownership") or None
    unnamed = query.get("unnamed") == "1"
    offset = whole(query.get("offset"))
    page = await console.services.stores.page(
        caller, offset=offset, limit=STORES_PER_PAGE, desc=True, unnamed=unnamed, ownership=ownership
    )
    return console.render(
        request,
        "stores.html",
        caller,
        page=page,
        ownership=ownership or "",
        unnamed=unnamed,
        previous=max(offset - STORES_PER_PAGE, 0) if offset > 0 else None,
        next=offset + STORES_PER_PAGE if offset + STORES_PER_PAGE < page.total else None,
    )


async def store(console: Console, request: Request, caller: Caller) -> Response:
    ref = request.path_params["store"]
    prefix = request.query_params.get("prefix") or ""
    keys = await console.services.records.list_keys(
        caller,
        ref,
        exclusive_start_key=request.query_params.get("after") or None,
        limit=KEYS_PER_PAGE,
        prefix=prefix,
        collection=None,
    )
    # Looked up afresh (not the hot path's cached row), so its stats include the latest writes.
    row, have = await console.services.stores.get(caller, ref)
    shares = (await console.services.stores.shares(caller, ref))[1] if have >= Level.OWNER else []
    api_url = f"{console.services.settings.base_url}/v2/key-value-stores/{row.id}"
    zip_url = None
    if have >= Level.WRITE:
        # Writers hold the signing secret, so the API's own signed URL serves them the archive. The link
        # expires: a page's links are made afresh on each visit, and one copied elsewhere dies in a day.
        signature = storage_signature(row.url_signing_secret_key, row.id, expires_in(DEFAULT_LINK_SECONDS))
        zip_url = f"{api_url}/records?{urlencode({'signature': signature})}"
    return console.render(
        request,
        "store.html",
        caller,
        store=row,
        level=have,
        Level=Level,
        keys=keys,
        prefix=prefix,
        shares=shares,
        accesses=GENERAL_ACCESS,
        api_url=api_url,
        zip_url=zip_url,
    )


async def settings(console: Console, request: Request, caller: Caller) -> Response:
    form = await read_form(request)
    if field(form, "rotateSigningKey"):
        # Every signed link to the store, whoever holds it, stops working; the page shows fresh ones.
        rotated = await console.services.stores.rotate_signing_key(caller, request.path_params["store"])
        return redirect(store_path(rotated.id) + "#signing")
    changes: dict[str, Any] = {}
    if "name" in form:
        changes["name"] = field(form, "name") or None
    if field(form, "generalAccess"):
        changes["generalAccess"] = field(form, "generalAccess")
    row = await console.services.stores.update(caller, request.path_params["store"], changes)
    return redirect(store_path(row.id))


async def delete(console: Console, request: Request, caller: Caller) -> Response:
    await console.services.stores.delete(caller, request.path_params["store"])
    return redirect(STORES)


async def share(console: Console, request: Request, caller: Caller) -> Response:
    ref = request.path_params["store"]
    form = await read_form(request)
    username = field(form, "username")
    if not username:
        raise InvalidRequest("Give the username to share the store with.")
    access = field(form, "access").lower()
    await console.services.stores.share(caller, ref, username, None if access == "none" else access)
    return redirect(store_path(ref) + "#sharing")
