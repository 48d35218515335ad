"""The rules for request queues and their requests.

A request queue is a store of kind REQUEST_QUEUE (ids, names, access, sharing and retention are the stores'
rules, in `self.stores`); what it holds are requests, each stored as the JSON its client sent (unknown fields
kept), deduplicated by uniqueKey, in queue order: FIFO for normal adds, LIFO among forefront adds, which all
come first.

A request's id is derived from its uniqueKey exactly as the Apify SDK derives it (`request_id`), because the
SDK computes ids itself and updates requests by them; a body whose id is not its uniqueKey's is refused. The
uniqueKey is compared as sent (never normalised), and falls back to the url when absent.

Locks: a head lock takes the first pending requests nobody holds, for `lockSecs`, for the caller's clientKey;
only that clientKey may prolong or release it. A lock whose expiry is not later than now is no lock, and its
request is back in the queue at the place of its expiry (after everything added before that). GET head leaves
locked requests out. hadMultipleClients counts the calls that take a clientKey (not GET of the queue nor of
one request); a call without one is a new client each time. The Console reads the head and the requests
through the same calls with `as_client=False`: a person looking at a queue is not a crawler taking from it,
and must not turn hadMultipleClients on (the SDK reads that to decide whether its local cache can be
trusted), nor count as a read of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from satchel.clock import now_ms
from satchel.errors import InvalidRequest, NotFound
from satchel.service.access import Caller, Level, Need
from satchel.service.queue_requests import (
    DEFAULT_HEAD,
    FILTERS,
    MAX_HEAD,
    MAX_LIST,
    MAX_LOCKED_HEAD,
    PAGE_BYTES,
    batch_of,
    client,
    last_if_more,
    parse_lock_secs,
    parse_request,
    read_cursor,
    request_id,
    unique_key,
)
from satchel.service.stores import Listing, StorePage, Stores
from satchel.storage import Storage, StoreRow
from satchel.storage.rows import QueueState, RequestAdded, RequestRow


@dataclass(slots=True)
class QueueView:
    store: StoreRow
    level: Level
    state: QueueState


@dataclass(slots=True)
class QueuePage:
    page: StorePage
    states: dict[int, QueueState]


@dataclass(slots=True)
class Head:
    state: QueueState
    items: list[RequestRow]
    limit: int


@dataclass(slots=True)
class RequestPage:
    items: list[RequestRow]
    limit: int
    next_after: str | None  # the last id of a full page, else None


class RequestQueues:
    def __init__(self, storage: Storage, stores: Stores) -> None:
        self.storage = storage
        self.table = storage.queues
        self.stores = stores

    # --- the queues

    async def _state(self, store_pk: int) -> QueueState:
        states = await self.table.states([store_pk])
        return states.get(store_pk) or QueueState()

    async def _view(self, store: StoreRow, level: Level) -> QueueView:
        return QueueView(store, level, await self._state(store.pk))

    async def get_or_create(self, caller: Caller, name: str | None) -> tuple[QueueView, bool]:
        store, created = await self.stores.get_or_create(caller, name, None)
        return await self._view(store, Level.OWNER), created

    async def get(self, caller: Caller, ref: str) -> QueueView:
        store, level = await self.stores.get(caller, ref)
        self.stores.usage.note(store.pk, now=now_ms())
        return await self._view(store, level)

    async def update(self, caller: Caller, ref: str, changes: dict[str, Any]) -> QueueView:
        return await self._view(await self.stores.update(caller, ref, changes), Level.OWNER)

    async def delete(self, caller: Caller, ref: str) -> None:
        await self.stores.delete(caller, ref)

    async def page(self, caller: Caller, listing: Listing) -> QueuePage:
        page = await self.stores.page(caller, listing)
        return QueuePage(page, await self.table.states([row.pk for row, _ in page.items]))

    # --- requests

    async def _open(self, caller: Caller, ref: str, need: Need) -> StoreRow:
        store, _ = await self.stores.resolve(caller, ref, need, cached=True)
        return store

    async def add(
        self, caller: Caller, ref: str, body: Any, *, forefront: bool, client_key: str | None
    ) -> RequestAdded:
        request = parse_request(body)
        store = await self._open(caller, ref, Need.WRITE)
        found = await self.table.add(
            store.pk, [request], forefront=forefront, client_key=client(client_key), now=now_ms()
        )
        return found[0]

    async def add_batch(
        self, caller: Caller, ref: str, body: Any, *, forefront: bool, client_key: str | None
    ) -> list[tuple[RequestAdded, str]]:
        """Add up to 25 requests; each result with its uniqueKey."""
        holder = client(client_key)  # checked even when the batch is empty
        items = batch_of(body)
        requests = [parse_request(item, where=f"Request {i}") for i, item in enumerate(items)]
        store = await self._open(caller, ref, Need.WRITE)
        if not requests:
            return []
        added = await self.table.add(store.pk, requests, forefront=forefront, client_key=holder, now=now_ms())
        return [(result, unique_key(item)) for result, item in zip(added, items, strict=True)]

    async def delete_batch(
        self, caller: Caller, ref: str, body: Any, *, client_key: str | None
    ) -> list[dict[str, str]]:
        """Delete up to 25 requests named by id or uniqueKey; each as it was named, with its id."""
        holder = client(client_key)  # checked even when the batch is empty
        named: list[dict[str, str]] = []
        for i, item in enumerate(batch_of(body)):
            if not isinstance(item, dict):
                raise InvalidRequest(f"Request {i} must be a JSON object with `id` or `uniqueKey`.")
            rid, key = item.get("id"), item.get("uniqueKey")
            if key is not None:
                if not isinstance(key, str) or not key:
                    raise InvalidRequest(f"Request {i}: field `uniqueKey` must be a non-empty string.")
                if rid is not None and rid != request_id(key):
                    raise InvalidRequest(f"Request {i}: its id does not match its uniqueKey.")
                named.append({"id": request_id(key), "uniqueKey": key})
            elif isinstance(rid, str) and rid:
                named.append({"id": rid})
            else:
                raise InvalidRequest(f"Request {i} must have a non-empty string `id` or `uniqueKey`.")
        store = await self._open(caller, ref, Need.WRITE)
        if named:
            ids = list(dict.fromkeys(n["id"] for n in named))
            await self.table.delete(store.pk, ids, client_key=holder, now=now_ms())
        return named

    async def get_request(self, caller: Caller, ref: str, rid: str) -> RequestRow:
        store = await self._open(caller, ref, Need.READ)
        self.stores.usage.note(store.pk, now=now_ms(), reads=1)
        row = await self.table.get(store.pk, rid)
        if row is None:
            raise NotFound("Request was not found.")
        return row

    async def put_request(
        self, caller: Caller, ref: str, rid: str, body: Any, *, forefront: bool, client_key: str | None
    ) -> RequestAdded:
        request = parse_request(body, path_id=rid)
        store = await self._open(caller, ref, Need.WRITE)
        return await self.table.put(
            store.pk, request, forefront=forefront, client_key=client(client_key), now=now_ms()
        )

    async def delete_request(self, caller: Caller, ref: str, rid: str, *, client_key: str | None) -> None:
        store = await self._open(caller, ref, Need.WRITE)
        if not await self.table.delete(store.pk, [rid], client_key=client(client_key), now=now_ms()):
            raise NotFound("Request was not found.")

    async def list_requests(
        self,
        caller: Caller,
        ref: str,
        *,
        limit: int,
        cursor: str | None,
        exclusive_start_id: str | None,
        filters: str | None,
        client_key: str | None,
        as_client: bool = True,
    ) -> RequestPage:
        if cursor is not None and exclusive_start_id is not None:
            raise InvalidRequest("Parameters `cursor` and `exclusiveStartId` cannot be used together.")
        after = read_cursor(cursor) if cursor is not None else exclusive_start_id
        chosen = [f.strip() for f in (filters or "").split(",") if f.strip()]
        if any(f not in FILTERS for f in chosen):
            raise InvalidRequest("Parameter `filter` takes `pending`, `locked` or both, comma-separated.")
        limit = min(limit, MAX_LIST) if limit > 0 else MAX_LIST
        store = await self._open(caller, ref, Need.READ)
        if as_client:
            await self._note_reader(store.pk, client(client_key))
            self.stores.usage.note(store.pk, now=now_ms(), lists=1)
        rows = await self.table.page(
            store.pk, after=after, limit=limit, max_bytes=PAGE_BYTES, pending="pending" in chosen,
            locked="locked" in chosen, now=now_ms(),
        )  # fmt: skip
        return RequestPage(rows, limit, last_if_more(rows, limit))

    # --- the head and locks

    async def head(
        self, caller: Caller, ref: str, *, limit: int, client_key: str | None, as_client: bool = True
    ) -> Head:
        limit = min(limit, MAX_HEAD) if limit > 0 else DEFAULT_HEAD
        store = await self._open(caller, ref, Need.READ)
        if as_client:
            state = await self._note_reader(store.pk, client(client_key))
            self.stores.usage.note(store.pk, now=now_ms(), reads=1)
        else:
            state = await self._state(store.pk)
        items = await self.table.head(store.pk, limit=limit, max_bytes=PAGE_BYTES, now=now_ms())
        return Head(_since_created(state, store), items, limit)

    async def lock_head(
        self, caller: Caller, ref: str, *, lock_secs: str | None, limit: int, client_key: str | None
    ) -> tuple[Head, bool, float]:
        seconds = parse_lock_secs(lock_secs)
        limit = min(limit, MAX_LOCKED_HEAD) if limit > 0 else MAX_LOCKED_HEAD
        store = await self._open(caller, ref, Need.WRITE)
        self.stores.usage.note(store.pk, now=now_ms(), reads=1)
        locked = await self.table.lock_head(
            store.pk, limit=limit, max_bytes=PAGE_BYTES, lock_ms=round(seconds * 1000),
            client_key=client(client_key), now=now_ms(),
        )  # fmt: skip
        return Head(_since_created(locked.state, store), locked.items, limit), locked.has_locked, seconds

    async def prolong(
        self,
        caller: Caller,
        ref: str,
        rid: str,
        *,
        lock_secs: str | None,
        forefront: bool,
        client_key: str | None,
    ) -> int:
        seconds = parse_lock_secs(lock_secs)
        store = await self._open(caller, ref, Need.WRITE)
        return await self.table.prolong(
            store.pk, rid, lock_ms=round(seconds * 1000), client_key=client(client_key), forefront=forefront,
            now=now_ms(),
        )  # fmt: skip

    async def release(
        self, caller: Caller, ref: str, rid: str, *, forefront: bool, client_key: str | None
    ) -> None:
        store = await self._open(caller, ref, Need.WRITE)
        await self.table.release(
            store.pk, rid, client_key=client(client_key), forefront=forefront, now=now_ms()
        )

    async def unlock(self, caller: Caller, ref: str, *, client_key: str | None) -> int:
        store = await self._open(caller, ref, Need.WRITE)
        return await self.table.unlock(store.pk, client_key=client(client_key), now=now_ms())

    async def _note_reader(self, store_pk: int, key: str) -> QueueState:
        """Count the client of a read; a write only when that changes what the queue knows of its clients."""
        state = await self._state(store_pk)
        known = state.client_key
        if state.had_multiple_clients or (known is not None and known == key and key != ""):
            return state
        return await self.table.note_client(store_pk, key)


def _since_created(state: QueueState, store: StoreRow) -> QueueState:
    """A queue never changed was last modified when it was made."""
    if state.modified_at == 0:
        state.modified_at = store.created_at
    return state
