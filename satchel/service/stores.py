"""The rules for storages: finding one by reference, get-or-create, rename and access, listing, deletion.

One Stores per kind (key-value stores, datasets, request queues): the three share these rules and differ in
what they hold, which their own services keep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from satchel.clock import now_ms
from satchel.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from satchel.service.access import (
    DEFAULT_GENERAL_ACCESS,
    GENERAL_ACCESS,
    GRANTS,
    Caller,
    Level,
    Need,
    level,
)
from satchel.service.ids import new_id, new_secret
from satchel.service.lookups import Lookups
from satchel.service.usage import Usage
from satchel.service.validation import (
    check_name,
    check_schema,
    check_title,
    check_username,
    shown,
    split_reference,
)
from satchel.storage import (
    GeneralAccess,
    Grant,
    GrantRow,
    NewStore,
    Ownership,
    Storage,
    StorageKind,
    StoreRow,
)
from satchel.storage.base import StoreOrder

MAX_PAGE = 1000
MAX_SEARCH = 100  # longer than any name or id
# What each kind is called in messages, and what it holds.
NOUNS = {
    StorageKind.KEY_VALUE_STORE: ("key-value store", "records"),
    StorageKind.DATASET: ("dataset", "items"),
    StorageKind.REQUEST_QUEUE: ("request queue", "requests"),
}
OWNERSHIP = {"": Ownership.ALL, "ownedByMe": Ownership.OWNED, "sharedWithMe": Ownership.SHARED}


@dataclass(frozen=True, slots=True)
class Listing:
    """What a list of storages of any kind asks for: the API's query, or a Console list page's."""

    offset: int
    limit: int
    desc: bool
    unnamed: bool
    ownership: str | None
    order: str | None = None  # a StoreOrder; None: by creation
    search: str | None = None  # names holding it, or the storage whose id it is


@dataclass(slots=True)
class StorePage:
    total: int
    offset: int
    limit: int
    desc: bool
    items: list[tuple[StoreRow, Level]]


class Stores:
    def __init__(
        self,
        storage: Storage,
        lookups: Lookups,
        usage: Usage,
        kind: StorageKind = StorageKind.KEY_VALUE_STORE,
    ) -> None:
        self.storage = storage
        self.table = storage.stores
        self.lookups = lookups
        self.usage = usage
        self.kind = kind
        self.noun, self.holds = NOUNS[kind]
        self.not_found = f"{self.noun[0].upper()}{self.noun[1:]} was not found."

    async def resolve(
        self,
        caller: Caller,
        ref: str,
        need: Need,
        *,
        cached: bool = False,
        signed: Callable[[StoreRow], bool] | None = None,
    ) -> tuple[StoreRow, Level]:
        """The store a reference names and the caller's level on it, if that level meets the need.

        A store the caller may not read answers exactly as a missing one, so ids and names cannot be probed:
        the same status, type and message whatever the store's name, its access, or a signature sent with the
        request. `signed` checks that signature against the store, for reads that a signed public URL grants;
        one that grants nothing is as good as none. (It may refuse a genuine signature that has expired in its
        own words: only someone who held a valid link sees that.)
        `cached`: the store may come from the lookups' cache (identity and access current, stats may lag).
        """
        if caller.user is None and need is not Need.READ:
            # No change is ever open to anonymous callers; saying so reveals nothing about the store.
            raise Unauthorized("Authentication token was not provided.")
        store_id, username, name = split_reference(ref)
        store: StoreRow | None
        if store_id is not None:
            store = await (self.lookups.store_by_id(store_id) if cached else self._fresh_by_id(store_id))
            if store is not None and store.kind is not self.kind:  # another kind's id names nothing here
                store = None
        else:
            assert name is not None
            if not username:
                if caller.user is None:
                    raise Unauthorized("Authentication token was not provided; `~name` needs one.")
                owner = caller.user
            else:
                owner = await self.storage.users.by_name(username)  # type: ignore[assignment]
            store = await self._fresh_by_name(owner.id, name) if owner is not None and name else None
        if store is None:
            raise self._not_found(caller, signed=signed is not None)
        grant = None
        if caller.user is not None and caller.user.id != store.user_id:
            grant = await self.lookups.grant(store.pk, caller.user.id)
        have = level(caller, store, grant, by_name=store_id is None)
        if have is Level.NONE and need is Need.READ and signed is not None and signed(store):
            return store, Level.READ
        if have is Level.NONE:
            raise self._not_found(caller, signed=signed is not None)
        if have < need:
            if caller.user is None:
                raise Unauthorized("Authentication token was not provided.")
            doing = f"manage this {self.noun}"
            if need is Need.WRITE:
                doing = f"modify this {self.noun}'s {self.holds}"
            raise Forbidden(f"You do not have permission to {doing}.")
        return store, have

    async def counting_key(
        self, caller: Caller, ref: str, *, who: str, kind: StorageKind | None = None
    ) -> str:
        """One key per storage however a request spells it (id, `username~name`, `~name`), for counting
        requests to it; a reference to no storage keeps its own spelling. Names are per kind (this one's, or
        the one given).

        The storage's own budget is its owner's: anyone else (`who`: a sharee, a reader of a public storage,
        a caller it is hidden from) counts against a budget of their own for it, so that requests refused,
        or anyone's, cannot spend what its owner may send.
        """
        store_id, username, name = split_reference(ref)
        if store_id is None:
            store_id = await self.lookups.store_id_by_name(
                username=username, user_id=caller.user_id, kind=kind or self.kind, name=name or ""
            )
            if store_id is None:
                return f"{who}|{username or caller.user_id}~{kind or self.kind}~{name}"
        store = await self.lookups.store_by_id(store_id)
        if store is not None and caller.user_id == store.user_id:
            return store_id
        return f"{who}|{store_id}"

    async def get_or_create(
        self,
        caller: Caller,
        name: str | None,
        schema: Any,
        *,
        schema_rule: Callable[[Any], None] | None = None,
    ) -> tuple[StoreRow, bool]:
        """The caller's storage of that name, or a new one; `schema_rule` checks the schema of a new one
        beyond the rules for every kind (an existing one is answered as it is, whatever schema is sent)."""
        user = _require_user(caller)
        if name is not None:
            check_name(name, self.noun)
            existing = await self._fresh_by_name(user.id, name)
            if existing is not None:
                return existing, False
        schema_text = check_schema(schema)
        if schema_rule is not None and schema is not None:
            schema_rule(schema)
        new = NewStore(
            id=new_id(),
            user_id=user.id,
            name=name,
            general_access=DEFAULT_GENERAL_ACCESS,
            url_signing_secret_key=new_secret(),
            schema=schema_text,
            created_at=now_ms(),
            kind=self.kind,
        )
        return await self.table.create(new)

    async def get(self, caller: Caller, ref: str) -> tuple[StoreRow, Level]:
        return await self.resolve(caller, ref, Need.READ)

    async def update(self, caller: Caller, ref: str, changes: dict[str, Any]) -> StoreRow:
        store, _ = await self.resolve(caller, ref, Need.OWN)
        name = store.name
        if "name" in changes:
            raw = changes["name"]
            if raw is not None and not isinstance(raw, str):
                raise InvalidRequest("Field `name` must be a string or null.", type="invalid-value")
            # An empty name makes the store unnamed, like null.
            name = check_name(raw, self.noun) if raw else None
        general_access = store.general_access
        if changes.get("generalAccess") is not None:
            if changes["generalAccess"] not in GENERAL_ACCESS:
                raise InvalidRequest(
                    f"Field `generalAccess` must be one of {', '.join(GENERAL_ACCESS)}.", type="invalid-value"
                )
            general_access = GeneralAccess(changes["generalAccess"])
        title = check_title(changes["title"]) if "title" in changes else store.title
        try:
            updated = await self.table.update(
                store.pk, name=name, general_access=general_access, title=title, now=now_ms()
            )
        except Conflict as exc:
            raise Conflict(f"A {self.noun} named {name!r} already exists.") from exc
        await self.lookups.changed()
        return self.usage.apply(updated)

    async def rotate_signing_key(self, caller: Caller, ref: str) -> StoreRow:
        """Give the store a new URL signing secret (owner only): every URL signed with the old one, by anyone,
        stops working at once on every node, and writers see the new one. This is what cuts the signed URLs
        a user whose share was revoked may have kept."""
        store, _ = await self.resolve(caller, ref, Need.OWN)
        updated = await self.table.set_url_signing_secret_key(store.pk, new_secret(), now=now_ms())
        await self.lookups.changed()
        return self.usage.apply(updated)

    async def delete(self, caller: Caller, ref: str) -> None:
        store, _ = await self.resolve(caller, ref, Need.OWN)
        await self.table.delete(store.pk)
        self.usage.drop(store.pk)
        await self.lookups.changed()

    async def page(self, caller: Caller, listing: Listing) -> StorePage:
        """A page of the caller's stores of this kind."""
        offset, limit, desc, order, search = (
            listing.offset,
            listing.limit,
            listing.desc,
            listing.order,
            listing.search,
        )
        user = _require_user(caller)
        try:
            sort = StoreOrder(order or StoreOrder.CREATED)
        except ValueError:
            choices = ", ".join(StoreOrder)
            raise InvalidRequest(f"The sort must be one of {choices}.", type="invalid-value") from None
        if search is not None and len(search) > MAX_SEARCH:
            raise InvalidRequest(f"The search is longer than {MAX_SEARCH} characters.", type="invalid-value")
        scope = OWNERSHIP.get(listing.ownership or "")
        if scope is None:
            raise InvalidRequest(
                "Parameter `ownership` must be ownedByMe or sharedWithMe.", type="invalid-value"
            )
        # 0 is what the official client's iterate() sends for "no limit": a full page.
        limit = min(limit, MAX_PAGE) if limit > 0 else MAX_PAGE
        total, rows = await self.table.page(
            user.id,
            self.kind,
            ownership=scope,
            unnamed=listing.unnamed,
            offset=offset,
            limit=limit,
            desc=desc,
            order=sort,
            search=search or None,
        )
        items = [(self.usage.apply(row), level(caller, row, grant, by_name=False)) for row, grant in rows]
        return StorePage(total, offset, limit, desc, items)

    # --- sharing

    async def shares(self, caller: Caller, ref: str) -> tuple[StoreRow, list[GrantRow]]:
        store, _ = await self.resolve(caller, ref, Need.OWN)
        return store, await self.storage.grants.of_store(store.pk)

    async def share(self, caller: Caller, ref: str, username: str, access: str | None) -> GrantRow | None:
        """Give a user "read" or "write" on a store the caller owns, or (None) take it away."""
        store, _ = await self.resolve(caller, ref, Need.OWN)
        if access is not None and access not in GRANTS:
            raise InvalidRequest("Field `access` must be READ or WRITE.", type="invalid-value")
        grant = Grant(access) if access is not None else None
        grantee = await self.storage.users.by_name(check_username(username))
        if grantee is None:
            raise NotFound(f"User {shown(username)} was not found.", type="user-not-found")
        if grantee.id == store.user_id:
            raise InvalidRequest("The owner of a store always has full access to it.", type="invalid-value")
        now = now_ms()
        await self.storage.grants.set(store.pk, grantee.id, grant, now)
        await self.lookups.changed()
        return GrantRow(grantee.id, grantee.username, grant, now) if grant else None

    def _not_found(self, caller: Caller, *, signed: bool = False) -> NotFound:
        """Said alike whether the store is missing or hidden. A signature sent is said to grant nothing (as a
        link whose store's signing key was replaced), the same for a store that is not there."""
        if signed:
            why = (
                " (The link's signature does not grant reading it: the link was changed, or the store's URL"
                " signing key was replaced since it was made.)"
            )
        else:
            why = " (No token was sent; private stores need one.)" if caller.user is None else ""
        if caller.user is None:
            return NotFound(self.not_found + why, type="record-or-token-not-found")
        return NotFound(self.not_found + why)

    async def _fresh_by_id(self, store_id: str) -> StoreRow | None:
        store = await self.table.by_id(store_id)
        return self.usage.apply(store) if store else None

    async def _fresh_by_name(self, user_id: str, name: str) -> StoreRow | None:
        store = await self.table.by_name(user_id, self.kind, name)
        return self.usage.apply(store) if store else None


def _require_user(caller: Caller) -> Any:
    if caller.user is None:
        raise Unauthorized("Authentication token was not provided.")
    return caller.user
