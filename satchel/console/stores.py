"""Console pages for stores: the list, and one store in tabs (its records, settings, and API).

Settings, signing key rotation, sharing and deletion are the same for every kind of storage (they are the
rules of service/stores.py), so they are made here once per `Kind`; the dataset and request queue pages use
them, with the template _manage.html, as the store's settings tab does. So are the lists: every kind's list
page reads its query with forms.listing() and renders with list_context().
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from satchel.console import record_list, snippets
from satchel.console.forms import (
    SORT_STARTS_DESC,
    STORES,
    field,
    list_query,
    listing,
    read_form,
    redirect,
    store_path,
)
from satchel.errors import InvalidRequest
from satchel.service.access import GENERAL_ACCESS, Caller, Level
from satchel.service.services import Services
from satchel.service.signing import DEFAULT_LINK_SECONDS, expires_in, storage_signature
from satchel.service.stores import Listing, Stores
from satchel.storage import StoreRow

if TYPE_CHECKING:
    from satchel.console.app import Console

STORES_PER_PAGE = 20
TABS = ("records", "settings", "api")

Handler = Callable[["Console", Request, Caller], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Kind:
    """What the pages every kind of storage shares need to know of one kind."""

    path: str  # the list page; one storage is at path/{id}
    noun: str  # "store", "dataset", "request queue"
    holds: str  # "records", "items", "requests"
    slug: str  # in element ids: "delete-store"
    stores: Callable[[Services], Stores]
    signing_note: str | None = None  # what its signed links reach; None: the kind has no signed links
    plural: str = ""  # in the list's "Include unnamed ..." box
    # What its list sorts by (StoreOrder values, with labels): the clocks and size kept on the store's row.
    sorts: tuple[str, ...] = ("name", "size", "modifiedAt", "createdAt")
    settings_tab: str = ""  # the query of the page its settings are on, when that is a tab

    def item_path(self, ref: str) -> str:
        return f"{self.path}/{quote(ref, safe='~')}"

    def settings_path(self, ref: str) -> str:
        return self.item_path(ref) + self.settings_tab


KEY_VALUE_STORES = Kind(
    STORES,
    "store",
    "records",
    "store",
    lambda services: services.stores,
    "a record, the list of keys, or the whole store as a ZIP",
    "key-value stores",
    settings_tab="?tab=settings",
)


def pager(offset: int, per_page: int, total: int) -> tuple[int | None, int | None]:
    """The offsets of the previous and next pages of a list, None where there is none. Past the end (an old
    link, a list that shrank since) the previous page is the list's last one: one page back from there was
    as empty, and so was the one before it."""
    if offset > 0 and offset >= total:
        return (total - 1) // per_page * per_page if total else 0, None
    previous = max(offset - per_page, 0) if offset > 0 else None
    return previous, offset + per_page if offset + per_page < total else None


def list_context(kind: Kind, args: Listing, page: Any) -> dict[str, Any]:
    """What a list page's template needs beside its rows: its query for links, the sort, and the pager."""
    previous, next_page = pager(args.offset, args.limit, page.total)
    return {
        "kind": kind,
        "page": page,
        "args": args,
        "query": list_query(args),
        "sort_starts_desc": SORT_STARTS_DESC,
        "ownership": args.ownership or "",
        "unnamed": args.unnamed,
        "previous": previous,
        "next": next_page,
    }


def retention_note(console: Console, kind: Kind) -> str:
    """What naming does to retention, in the words of service/retention.py and the configured period."""
    seconds = console.services.settings.retention_seconds
    period = next(
        (f"{seconds // size} {unit}{'s' if seconds // size != 1 else ''}"
         for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"))
         if seconds % size == 0),
        f"{seconds} seconds",
    )  # fmt: skip
    return (
        f"A named {kind.noun} is kept until it is deleted; an unnamed one is deleted with all its "
        f"{kind.holds} once nobody has read or changed it for {period}. Removing the name makes it unnamed."
    )


def signed_api_url(console: Console, kind_path: str, row: StoreRow, have: Level, tail: str) -> str | None:
    """An API URL under the storage, signed so it reads without a token, for writers (who hold the signing
    secret anyway). The link expires: a page's links are made afresh on each visit, and one copied elsewhere
    dies in a day."""
    if have < Level.WRITE:
        return None
    signature = storage_signature(row.url_signing_secret_key, row.id, expires_in(DEFAULT_LINK_SECONDS))
    url = f"{console.services.settings.base_url}/v2/{kind_path}/{row.id}{tail}"
    return f"{url}?{urlencode({'signature': signature})}"


async def manage_context(
    console: Console, caller: Caller, kind: Kind, ref: str, have: Level
) -> dict[str, Any]:
    """What _manage.html needs: the kind, the store's shares (for its owner) and the access choices."""
    shares = (await kind.stores(console.services).shares(caller, ref))[1] if have >= Level.OWNER else []
    return {
        "kind": kind,
        "level": have,
        "Level": Level,
        "shares": shares,
        "accesses": GENERAL_ACCESS,
        "retention": retention_note(console, kind),
    }


def settings_of(kind: Kind) -> Handler:
    async def settings(console: Console, request: Request, caller: Caller) -> Response:
        stores = kind.stores(console.services)
        form = await read_form(request)
        if field(form, "rotateSigningKey"):
            # Every signed link to the store, whoever holds it, stops working; the page shows fresh ones.
            rotated = await stores.rotate_signing_key(caller, request.path_params["store"])
            return redirect(kind.settings_path(rotated.id) + "#signing", "rotated")
        changes: dict[str, Any] = {}
        if "name" in form:
            changes["name"] = field(form, "name") or None
        if field(form, "generalAccess"):
            changes["generalAccess"] = field(form, "generalAccess")
        row = await stores.update(caller, request.path_params["store"], changes)
        return redirect(kind.settings_path(row.id), "saved")

    return settings


def delete_of(kind: Kind) -> Handler:
    async def delete(console: Console, request: Request, caller: Caller) -> Response:
        await kind.stores(console.services).delete(caller, request.path_params["store"])
        return redirect(kind.path, "deleted")

    return delete


def share_of(kind: Kind) -> Handler:
    async def share(console: Console, request: Request, caller: Caller) -> Response:
        ref = request.path_params["store"]
        form = await read_form(request)
        username = field(form, "username")
        if not username:
            raise InvalidRequest(f"Give the username to share the {kind.noun} with.")
        access = field(form, "access").lower()
        stores = kind.stores(console.services)
        await stores.share(caller, ref, username, None if access == "none" else access)
        return redirect(kind.settings_path(ref) + "#sharing", "shared")

    return share


def create_of(kind: Kind) -> Handler:
    """The list page's form: get or create the storage of the name given (unnamed when none)."""

    async def create(console: Console, request: Request, caller: Caller) -> Response:
        name = field(await read_form(request), "name") or None
        store, created = await kind.stores(console.services).get_or_create(caller, name, None)
        return redirect(kind.item_path(store.id), "created" if created else "exists")

    return create


settings = settings_of(KEY_VALUE_STORES)
delete = delete_of(KEY_VALUE_STORES)
share = share_of(KEY_VALUE_STORES)
_create_store = create_of(KEY_VALUE_STORES)


async def stores(console: Console, request: Request, caller: Caller) -> Response:
    if request.method == "POST":
        return await _create_store(console, request, caller)
    args = listing(request, STORES_PER_PAGE)
    page = await console.services.stores.page(caller, args)
    return console.render(request, "stores.html", caller, **list_context(KEY_VALUE_STORES, args, page))


async def store(console: Console, request: Request, caller: Caller) -> Response:
    """One store, in tabs that are plain links (`?tab=`): its records (with a preview of the one chosen),
    its settings (for its owner), and its API with ready-to-run lines."""
    ref = request.path_params["store"]
    tab = request.query_params.get("tab") or "records"
    if tab not in TABS:
        raise InvalidRequest(f"The tab must be one of {', '.join(TABS)}.")
    # Looked up afresh (not the hot path's cached row), so its stats include the latest writes.
    row, have = await console.services.stores.get(caller, ref)
    context: dict[str, Any] = {
        "store": row,
        "tab": tab,
        "api_url": f"{snippets.base_url(request)}/v2/key-value-stores/{row.id}",
        # Writers hold the signing secret, so the API's own signed URL serves them the archive (a link they
        # may pass on, which expires); a reader, who may not sign, downloads it through the Console.
        "zip_url": signed_api_url(console, "key-value-stores", row, have, "/records")
        or f"{store_path(ref)}/zip",
        "level": have,
        "Level": Level,
    }
    if tab == "records":
        context.update(await record_list.context(console, request, caller, ref, store=row, have=have))
    elif tab == "settings":
        context.update(await manage_context(console, caller, KEY_VALUE_STORES, ref, have))
    else:
        context["snippets"] = snippets.key_value_store(snippets.base_url(request), row)
    return console.render(request, "store.html", caller, **context)
