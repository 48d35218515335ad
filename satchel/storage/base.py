"""The storage seam: one small interface per resource kind, and the bundle the service layer holds.

Engines know nothing of permissions or HTTP; they store what the service decided and return plain rows
(rows.py). Metadata engines (SQLite, PostgreSQL) implement the five tables below; a blob store (local files,
S3) holds the bodies too large to keep inline, and the metadata engine's records use it. Caches live above
the engines (service/lookups.py), kept fresh by the change feed (feed.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from satchel.storage.blobs.base import BlobStore
from satchel.storage.body import RecordRead, UploadBody
from satchel.storage.feed import ChangeFeed
from satchel.storage.rows import (
    GeneralAccess,
    Grant,
    GrantRow,
    KeyItem,
    NewStore,
    Ownership,
    RecordHead,
    SessionRow,
    StorageKind,
    StoreRow,
    StoreUsage,
    TokenRow,
    UserRow,
)


class UserTable(Protocol):
    """Users and their tokens (kept as SHA-256 digests)."""

    async def by_token_hash(self, token_hash: str) -> UserRow | None: ...
    async def by_name(self, username: str) -> UserRow | None: ...
    async def by_id(self, user_id: str) -> UserRow | None: ...
    async def all(self) -> list[UserRow]: ...
    async def create(
        self, user_id: str, username: str, now: int, *, default_general_access: GeneralAccess
    ) -> UserRow:
        """Insert a user; raises Conflict when the username is taken."""
        ...

    async def set_default_general_access(self, user_id: str, access: GeneralAccess) -> None: ...
    async def add_token(self, user_id: str, token_hash: str, now: int) -> None:
        """Give the user a token; adding one they already hold changes nothing."""
        ...

    async def tokens(self, user_id: str | None = None) -> list[TokenRow]: ...
    async def delete_token(self, token_hash: str) -> bool: ...


class SessionTable(Protocol):
    """Console sign-ins, kept by the SHA-256 digest of their id, each made from one token.

    A session ends when it expires, when it is deleted (signing out), and with the token it was made from:
    deleting the token deletes its sessions in the same transaction, so a token added again later (the
    admin's, set in the environment) does not bring them back.
    """

    async def create(self, session_hash: str, token_hash: str, now: int, expires_at: int) -> bool:
        """Start a session made from the token; False (and none made) when the token is gone."""
        ...

    async def get(self, session_hash: str, now: int) -> SessionRow | None:
        """The session, if it has not expired by now and its token is still held."""
        ...

    async def delete(self, session_hash: str) -> bool: ...
    async def delete_expired(self, now: int, limit: int) -> int:
        """Delete up to limit sessions expired by now; return how many went."""
        ...


class GrantTable(Protocol):
    """Rights that stores' owners gave other users."""

    async def get(self, store_pk: int, user_id: str) -> Grant | None: ...
    async def set(self, store_pk: int, user_id: str, access: Grant | None, now: int) -> None:
        """Give the user a right on the store, or take it away with None."""
        ...

    async def of_store(self, store_pk: int) -> list[GrantRow]: ...


class StoreTable(Protocol):
    """The storages (key-value stores, datasets, request queues): identity, access, stats and clocks.

    The three kinds share one table, so access, sharing and retention are the same for all; names are unique
    per user and kind. What each kind holds (records, items, requests) is in its own table, deleted with it.
    """

    async def create(self, new: NewStore) -> tuple[StoreRow, bool]:
        """Insert a store; with a name already taken by its user, return the existing one and False."""
        ...

    async def by_id(self, store_id: str) -> StoreRow | None: ...
    async def by_name(self, user_id: str, kind: StorageKind, name: str) -> StoreRow | None: ...
    async def page(
        self,
        user_id: str,
        kind: StorageKind,
        *,
        ownership: Ownership,
        unnamed: bool,
        offset: int,
        limit: int,
        desc: bool,
    ) -> tuple[int, list[tuple[StoreRow, Grant | None]]]:
        """A page of the stores of one kind a user owns, was granted, or both, in order of creation.

        Each comes with the user's grant on it (None for their own), and without its schema (None): a list
        never shows schemas, and a page of 1,000 would read up to 64 MiB of them for nothing.
        """
        ...

    async def update(
        self, pk: int, *, name: str | None, general_access: GeneralAccess, title: str | None, now: int
    ) -> StoreRow:
        """Rename (None makes it unnamed) and set access; raises Conflict when its kind has the name."""
        ...

    async def set_url_signing_secret_key(self, pk: int, secret: str, *, now: int) -> StoreRow:
        """Replace the store's URL signing secret (a change of the store, as update is); NotFound if gone."""
        ...

    async def delete(self, pk: int, *, unused_since: int | None = None) -> bool:
        """Delete a store with its records, items or requests and grants; its blobs go to the dead list.

        With unused_since, only an unnamed store unused (read, written, listed) since then is deleted, checked
        in the same transaction as the delete: a store used after the caller chose it is kept.
        """
        ...

    async def expired(self, cutoff: int, limit: int) -> list[int]:
        """Unnamed stores whose last use is older than cutoff."""
        ...

    async def add_usage(self, usage: Mapping[int, StoreUsage]) -> None:
        """Add reads and listings counted elsewhere to the stores' rows, and move their last use."""
        ...


class RecordTable(Protocol):
    """Records and the bookkeeping of the blobs their bodies live in."""

    async def read(self, store_pk: int, key: str) -> RecordRead | None: ...
    async def head(self, store_pk: int, key: str) -> RecordHead | None: ...
    async def write(
        self,
        store_pk: int,
        key: str,
        *,
        content_type: str,
        content_encoding: str | None,
        body: UploadBody,
        now: int,
    ) -> RecordHead:
        """Store the body as it streams in; visible to readers only once durable and whole."""
        ...

    async def delete(self, store_pk: int, key: str, *, now: int) -> bool: ...
    async def keys(
        self, store_pk: int, *, prefix: str, exclusive_start_key: str | None, limit: int
    ) -> list[KeyItem]:
        """Up to limit keys in UTF-8 binary order, after exclusive_start_key, starting with prefix."""
        ...

    def iterate(self, store_pk: int, *, prefix: str) -> AsyncIterator[RecordRead]:
        """Every record with the prefix, in key order, a page at a time."""
        ...

    # the blob ledger, for housekeeping.py
    async def dead_blobs(self, cutoff: int, limit: int) -> list[str]:
        """Blobs no record names any more, dead since before cutoff."""
        ...

    async def abandoned_uploads(self, cutoff: int, limit: int) -> list[str]:
        """Blobs whose upload began before cutoff and never committed (a crash, a lost connection)."""
        ...

    async def forget_blobs(self, names: Sequence[str]) -> None:
        """Drop the names from the dead list and the upload list, once their blobs are gone."""
        ...


class DatasetTable(Protocol):
    """Datasets' items (the dataset itself is a row of StoreTable): append-only, in order of arrival."""


class QueueTable(Protocol):
    """Request queues' requests (the queue itself is a row of StoreTable): order, dedup, locks, counts."""


class RunTable(Protocol):
    """Actors and their runs, as far as storages reach into them."""


@dataclass
class Storage:
    """What the service layer holds: the tables, the blob store under them, and the change feed."""

    users: UserTable
    grants: GrantTable
    stores: StoreTable
    records: RecordTable
    sessions: SessionTable
    datasets: DatasetTable
    queues: QueueTable
    runs: RunTable
    blobs: BlobStore
    feed: ChangeFeed
    # Run in order by open() (and in reverse by close()): the engines' own start and housekeeping.
    openers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def open(self) -> None:
        for opener in self.openers:
            await opener()

    async def close(self) -> None:
        for closer in reversed(self.closers):
            await closer()
