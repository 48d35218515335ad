"""Caches of the hot path's lookups (tokens, stores by id, grants), above the engines.

Every request needs its caller, its store and maybe a grant; a cache answers them in memory. A cache is good
while the change feed's stamp is the one it was filled under, and every change to users, tokens, grants or
stores publishes to the feed, so a revocation, rename or access change on any process or node applies to the
next request everywhere. Cached stores carry current identity and access; their stats and clocks may lag.

The feed is told after a change commits, not in the same transaction: a process that dies between the two
leaves other caches stale, so every cache also starts over after MAX_AGE_SECONDS whatever the feed says.
"""

from __future__ import annotations

import time
from typing import TypeVar

from satchel.storage import Grant, Storage, StorageKind, StoreRow, UserRow

MAX_AGE_SECONDS = 10.0
CACHE_MAX = 10_000  # entries in each cache, so memory stays bounded under many stores or users
K = TypeVar("K")
V = TypeVar("V")
NO_GRANT = ""  # a cached "no grant", told apart from "not cached"


def _remember(cache: dict[K, V], key: K, value: V) -> V:
    """Cache a value; a full cache starts over, which costs less on the hot path than LRU bookkeeping."""
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


class Lookups:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.feed = storage.feed
        self._stamp: int | None = None
        self._expires = 0.0
        self._users_by_token: dict[str, UserRow] = {}
        self._stores_by_id: dict[str, StoreRow] = {}
        self._grants: dict[tuple[int, str], str] = {}
        # (owner's username or id, kind, store name) -> id
        self._ids_by_name: dict[tuple[str, StorageKind, str], str] = {}

    def _fresh(self) -> None:
        stamp = self.feed.stamp()
        now = time.monotonic()
        if stamp != self._stamp or now > self._expires:
            self._users_by_token.clear()
            self._stores_by_id.clear()
            self._grants.clear()
            self._ids_by_name.clear()
            self._stamp = stamp
            self._expires = now + MAX_AGE_SECONDS

    async def changed(self) -> None:
        """Say that users, tokens, grants or stores changed: every cache the feed reaches starts over."""
        self._stamp = None
        await self.feed.publish()

    async def user_by_token_hash(self, token_hash: str) -> UserRow | None:
        self._fresh()
        user = self._users_by_token.get(token_hash)
        if user is None:
            stamp = self._stamp
            user = await self.storage.users.by_token_hash(token_hash)
            if user is not None and stamp == self._stamp:  # not filled across a change
                _remember(self._users_by_token, token_hash, user)
        return user

    async def store_by_id(self, store_id: str) -> StoreRow | None:
        self._fresh()
        store = self._stores_by_id.get(store_id)
        if store is None:
            stamp = self._stamp
            store = await self.storage.stores.by_id(store_id)
            if store is not None and stamp == self._stamp:
                _remember(self._stores_by_id, store_id, store)
        return store

    async def store_id_by_name(
        self, *, username: str | None, user_id: str | None, kind: StorageKind, name: str
    ) -> str | None:
        """The id of the storage of a kind an owner (given by username, or else by id) has under a name."""
        self._fresh()
        owner = username if username else user_id
        if not owner or not name:
            return None
        found = self._ids_by_name.get((owner, kind, name))
        if found is None:
            stamp = self._stamp
            if username:
                user = await self.storage.users.by_name(username)
                user_id = user.id if user is not None else None
            store = await self.storage.stores.by_name(user_id, kind, name) if user_id else None
            if store is None:
                return None
            found = store.id
            if stamp == self._stamp:
                _remember(self._ids_by_name, (owner, kind, name), found)
        return found

    async def grant(self, store_pk: int, user_id: str) -> Grant | None:
        self._fresh()
        access = self._grants.get((store_pk, user_id))
        if access is None:
            stamp = self._stamp
            found = await self.storage.grants.get(store_pk, user_id)
            access = found or NO_GRANT
            if stamp == self._stamp:
                _remember(self._grants, (store_pk, user_id), access)
        return Grant(access) if access else None
