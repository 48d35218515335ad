"""The rules for stores: finding one by reference, get-or-create, rename and access, listing, deletion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from satchel.clock import now_ms
from satchel.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from satchel.service.access import (
    DEFAULT_GENERAL_ACCESS,
    GENERAL_ACCESS,
    Caller,
    Need,
    allowed,
)
from satchel.service.ids import new_id, new_secret
from satchel.service.validation import check_name, split_reference
from satchel.storage import Engine, NewStore, StoreRow

MAX_PAGE = 1000
NOT_FOUND = "Key-value store was not found."


@dataclass(slots=True)
class StorePage:
    total: int
    offset: int
    limit: int
    desc: bool
    items: list[StoreRow]


class Stores:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def resolve(
        self,
        caller: Caller,
        ref: str,
        need: Need,
        *,
        cached: bool = False,
        signed: Callable[[StoreRow], bool] | None = None,
    ) -> StoreRow:
        """The store a reference names, if the caller may use it that way.

        A store the caller may not see answers exactly as a missing one, so ids cannot be probed. `signed`
        checks the request's signature against the store, for reads that a signed public URL grants.
        """
        store_id, username, name = split_reference(ref)
        store: StoreRow | None
        if store_id is not None:
            store = await self.engine.store_by_id(store_id, cached=cached)
        else:
            assert name is not None
            if not username:
                if caller.user is None:
                    raise Unauthorized("Authentication token was not provided; `~name` needs one.")
                owner = caller.user
            else:
                owner = await self.engine.user_by_name(username)  # type: ignore[assignment]
            store = await self.engine.store_by_name(owner.id, name) if owner is not None and name else None
        if store is not None and need is Need.READ and signed is not None and signed(store):
            return store
        if store is None or not allowed(caller, store, Need.READ, by_name=store_id is None):
            if store is not None and signed is not None:
                raise Forbidden(
                    "The signature is not valid for this resource, or it has expired.", "invalid-signature"
                )
            if caller.user is None:
                raise NotFound(
                    NOT_FOUND + " (No token was sent; private stores need one.)",
                    type="record-or-token-not-found",
                )
            raise NotFound(NOT_FOUND)
        if need is Need.WRITE and not allowed(caller, store, Need.WRITE, by_name=store_id is None):
            if caller.user is None:
                raise Unauthorized("Authentication token was not provided.")
            raise Forbidden("You do not have permission to modify this key-value store.")
        return store

    async def get_or_create(self, caller: Caller, name: str | None, schema: Any) -> tuple[StoreRow, bool]:
        user = _require_user(caller)
        if name is not None:
            check_name(name)
            existing = await self.engine.store_by_name(user.id, name)
            if existing is not None:
                return existing, False
        if schema is not None and not isinstance(schema, dict):
            raise InvalidRequest("The store schema must be a JSON object.", type="invalid-value")
        new = NewStore(
            id=new_id(),
            user_id=user.id,
            name=name,
            general_access=DEFAULT_GENERAL_ACCESS,
            url_signing_secret_key=new_secret(),
            schema=orjson.dumps(schema).decode() if schema is not None else None,
            created_at=now_ms(),
        )
        return await self.engine.create_store(new)

    async def get(self, caller: Caller, ref: str) -> StoreRow:
        return await self.resolve(caller, ref, Need.READ)

    async def update(self, caller: Caller, ref: str, changes: dict[str, Any]) -> StoreRow:
        _require_user(caller)
        store = await self.resolve(caller, ref, Need.WRITE)
        name = store.name
        if "name" in changes:
            raw = changes["name"]
            if raw is not None and not isinstance(raw, str):
                raise InvalidRequest("Field `name` must be a string or null.", type="invalid-value")
            # An empty name makes the store unnamed, like null.
            name = check_name(raw) if raw else None
        general_access = store.general_access
        if changes.get("generalAccess") is not None:
            general_access = changes["generalAccess"]
            if general_access not in GENERAL_ACCESS:
                raise InvalidRequest(
                    f"Field `generalAccess` must be one of {', '.join(GENERAL_ACCESS)}.", type="invalid-value"
                )
        title = store.title
        if "title" in changes:
            title = changes["title"]
            if title is not None and not isinstance(title, str):
                raise InvalidRequest("Field `title` must be a string or null.", type="invalid-value")
        return await self.engine.update_store(
            store.pk, name=name, general_access=general_access, title=title, now=now_ms()
        )

    async def delete(self, caller: Caller, ref: str) -> None:
        _require_user(caller)
        store = await self.resolve(caller, ref, Need.WRITE)
        await self.engine.delete_store(store.pk)

    async def list(
        self, caller: Caller, *, offset: int, limit: int, desc: bool, unnamed: bool, ownership: str | None
    ) -> StorePage:
        user = _require_user(caller)
        if ownership not in (None, "ownedByMe", "sharedWithMe"):
            raise InvalidRequest(
                "Parameter `ownership` must be ownedByMe or sharedWithMe.", type="invalid-value"
            )
        # 0 is what the official client's iterate() sends for "no limit": a full page.
        limit = min(limit, MAX_PAGE) if limit > 0 else MAX_PAGE
        if ownership == "sharedWithMe":
            return StorePage(0, offset, limit, desc, [])
        total, items = await self.engine.list_stores(
            user.id, unnamed=unnamed, offset=offset, limit=limit, desc=desc
        )
        return StorePage(total, offset, limit, desc, items)


def _require_user(caller: Caller) -> Any:
    if caller.user is None:
        raise Unauthorized("Authentication token was not provided.")
    return caller.user
