"""The storage seam: one small interface per resource kind, and the bundle the service layer holds.

Engines know nothing of permissions or HTTP; they store what the service decided and return plain rows
(rows.py). Metadata engines (SQLite, PostgreSQL) implement the five tables below; a blob store (local files,
S3) holds the bodies too large to keep inline, and the metadata engine's records use it. Caches live above
the engines (service/lookups.py), kept fresh by the change feed (feed.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from satchel.storage.blobs.base import BlobStore
from satchel.storage.body import RecordRead, UploadBody
from satchel.storage.conditions import WriteCondition
from satchel.storage.feed import ChangeFeed
from satchel.storage.rows import (
    ActorRow,
    DatasetCounts,
    DeploymentMark,
    GeneralAccess,
    Grant,
    GrantRow,
    ItemBatch,
    KeyItem,
    LockedHead,
    NewRequest,
    NewStore,
    Ownership,
    QueueState,
    RecordHead,
    RequestAdded,
    RequestRow,
    RunRow,
    SessionRow,
    StorageKind,
    StorageTotals,
    StoreRow,
    StoreUsage,
    TokenRow,
    UserRow,
)

# The most bytes of inline bodies one page of `RecordTable.iterate` holds (past its first record).
ITERATE_BYTES = 1024 * 1024


class StoreOrder(StrEnum):
    """What a list of stores is sorted by (then by pk, for a stable order); the Console's sort options."""

    CREATED = "createdAt"
    NAME = "name"  # in UTF-8 binary order; unnamed stores last
    SIZE = "size"  # the bytes of its records or items
    MODIFIED = "modifiedAt"


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
    async def add_token(self, user_id: str, token_hash: str, now: int, *, name: str | None = None) -> None:
        """Give the user a token (named, or not); adding one they already hold changes nothing."""
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
        order: StoreOrder = StoreOrder.CREATED,
        search: str | None = None,
    ) -> tuple[int, list[tuple[StoreRow, Grant | None]]]:
        """A page of the stores of one kind a user owns, was granted, or both, in the order asked for.

        `search` keeps the stores whose name holds it (ignoring ASCII case) or whose id it is. Sorting and
        searching happen in the database over the user's own and granted stores (found by index), so a page
        costs one bounded sort there, never a read of every store into the process.
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

    async def totals(self) -> StorageTotals:
        """What all storages hold, counted now (a scan of the records' index: for /metrics, not requests)."""
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
        condition: WriteCondition | None = None,
    ) -> RecordHead:
        """Store the body as it streams in; visible to readers only once durable and whole. The head returned
        carries the body's ETag, hashed as it streamed. With a condition, it is checked against the current
        record in the transaction that commits (PreconditionFailed, and the new body removed, when it fails),
        so concurrent writers on any node never both pass a check on the same value."""
        ...

    async def delete(
        self, store_pk: int, key: str, *, now: int, condition: WriteCondition | None = None
    ) -> bool:
        """Delete the record; with a condition, checked as write checks it (PreconditionFailed)."""
        ...

    async def fill_etag(self, store_pk: int, key: str, etag: str) -> None:
        """Store the ETag of a record written before ETags, unless a write has given it one meanwhile."""
        ...

    async def keys(
        self, store_pk: int, *, prefix: str, exclusive_start_key: str | None, limit: int
    ) -> list[KeyItem]:
        """Up to limit keys in UTF-8 binary order, after exclusive_start_key, starting with prefix."""
        ...

    def iterate(self, store_pk: int, *, prefix: str) -> AsyncIterator[RecordRead]:
        """Every record with the prefix, in key order, a page at a time: a page ends before the record at
        which the bodies kept inline reach ITERATE_BYTES (a slow reader of a ZIP or an export holds a page
        for as long as it reads), and always holds at least one."""
        ...

    async def some_blobs(self, limit: int) -> list[str]:
        """Up to limit blobs that records name (any), to check that a blob store is the one they are in."""
        ...

    async def mark(self) -> DeploymentMark | None:
        """The deployment mark of the blob store the records' bodies are in (pairing.py); None unpaired."""
        ...

    async def claim_mark(self, mark: str, now: int) -> DeploymentMark:
        """Keep `mark` unless the database holds one already (another node was first); the one it holds."""
        ...

    async def paired(self, now: int) -> None:
        """Note that the blob store holds the mark: a blob store without it is refused from now on."""
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
    """Datasets' items (the dataset itself is a row of StoreTable): append-only, in order of arrival.

    Items are numbered from 0 (their seq) in the order they were appended, so the page at any offset is an
    index range of (store_pk, seq), as cheap at offset 1,000,000 as at 0.
    """

    async def counts(self, store_pk: int) -> DatasetCounts:
        """The dataset's item counts (zero for one nothing was ever pushed to)."""
        ...

    async def counts_of(self, store_pks: Sequence[int]) -> dict[int, DatasetCounts]:
        """Item counts of several datasets at once (a page of a dataset list); missing ones are zero."""
        ...

    async def append(self, store_pk: int, batch: ItemBatch, *, now: int) -> DatasetCounts:
        """Append the items after the last one, in order, in one transaction with the counts and the store's
        stats (a write, its bytes, modifiedAt); concurrent appends to one dataset queue, never interleave.
        Raises NotFound when the store is gone. Returns the counts after the append."""
        ...

    async def items(self, store_pk: int, first: int, end: int, *, desc: bool) -> list[bytes]:
        """The items with first <= seq < end, by seq (descending with desc)."""
        ...


class QueueTable(Protocol):
    """Request queues' requests (the queue itself is a row of StoreTable): order, dedup, locks, counts.

    A request's id is derived from its uniqueKey (the service does that), so dedup is by id. Every change is
    one transaction, serialised per queue, that also counts its client (`client_key`, "" for a call without
    one) for hadMultipleClients. Locks are rows, not memory: a lock is held while its expiry is later than
    `now`, and every node sees it. Raises NotFound when the queue is gone.
    """

    async def states(self, store_pks: Sequence[int]) -> dict[int, QueueState]:
        """The queues' counts and clocks; a queue never written to is missing (its state is the default)."""
        ...

    async def note_client(self, store_pk: int, client_key: str) -> QueueState:
        """Count a client of the queue (for calls that change nothing); the state after it."""
        ...

    async def add(
        self, store_pk: int, requests: Sequence[NewRequest], *, forefront: bool, client_key: str, now: int
    ) -> list[RequestAdded]:
        """Add the requests not present yet, in order; one present (or repeated in the batch) stays as is."""
        ...

    async def put(
        self, store_pk: int, request: NewRequest, *, forefront: bool, client_key: str, now: int
    ) -> RequestAdded:
        """Write a request over the stored one, or add it. Pending (no handled time), it goes to the end (or
        the front) and loses any lock."""
        ...

    async def get(self, store_pk: int, request_id: str) -> RequestRow | None: ...
    async def delete(self, store_pk: int, ids: Sequence[str], *, client_key: str, now: int) -> list[str]:
        """Delete the requests; the ids of those that were there."""
        ...

    # Each of the three below returns at most `limit` requests, and stops before a request once the bodies
    # before it reach `max_bytes` (so at least one): a page of requests as large as a payload may be stays a
    # few of them, not its limit's worth in memory.

    async def page(
        self,
        store_pk: int,
        *,
        after: str | None,
        limit: int,
        max_bytes: int,
        pending: bool,
        locked: bool,
        now: int,
    ) -> list[RequestRow]:
        """Requests in id order after `after`: all, or (union) the pending ones and the locked ones."""
        ...

    async def head(self, store_pk: int, *, limit: int, max_bytes: int, now: int) -> list[RequestRow]:
        """The first pending requests nobody holds a lock on, in queue order."""
        ...

    async def lock_head(
        self, store_pk: int, *, limit: int, max_bytes: int, lock_ms: int, client_key: str, now: int
    ) -> LockedHead:
        """Lock the head's first requests for the client, atomically: no two callers get one request."""
        ...

    async def prolong(
        self, store_pk: int, request_id: str, *, lock_ms: int, client_key: str, forefront: bool, now: int
    ) -> int:
        """Extend the client's own lock to now + lock_ms; the new expiry. NotFound / Conflict otherwise."""
        ...

    async def release(
        self, store_pk: int, request_id: str, *, client_key: str, forefront: bool, now: int
    ) -> None:
        """Drop the client's own lock; the request goes to the end (or the front). NotFound / Conflict."""
        ...

    async def unlock(self, store_pk: int, *, client_key: str, now: int) -> int:
        """Drop every lock the client holds in the queue (requeued at the end); how many."""
        ...


class RunTable(Protocol):
    """Actors and their runs, as far as storages reach into them.

    A run's default storages are rows of StoreTable, made before the run; creating the run marks them as its
    own (actId, actRunId) in the same transaction.
    """

    async def actor_by_id(self, actor_id: str) -> ActorRow | None: ...
    async def actor_by_name(self, user_id: str, name: str) -> ActorRow | None: ...
    async def create_actor(self, actor: ActorRow) -> ActorRow:
        """Insert an Actor; with its name already taken by its user, return the existing one."""
        ...

    async def create(self, run: RunRow) -> RunRow:
        """Insert a run and set actId/actRunId on its three default stores."""
        ...

    async def by_id(self, run_id: str) -> RunRow | None: ...
    async def update(self, run_id: str, changes: Mapping[str, object]) -> RunRow | None:
        """Set columns of rows.RUN_CHANGEABLE; None when there is no such run."""
        ...

    async def abort(self, run_id: str, now: int, *, gracefully: bool = False) -> RunRow | None:
        """Mark an unfinished run ABORTED, or (`gracefully`) ABORTING, not yet finished; a finished one is
        left as it is. None if there is no such run."""
        ...

    async def delete(self, run_id: str) -> bool:
        """Delete a finished run, its charges and its log (its storages stay); whether a finished run was
        deleted."""
        ...

    async def page(
        self,
        user_id: str,
        *,
        act_id: str | None,
        statuses: Sequence[str],
        origin: str | None,
        started_after: int | None,
        started_before: int | None,
        offset: int,
        limit: int,
        desc: bool,
    ) -> tuple[int, list[RunRow]]:
        """A page of a user's runs (of one Actor, with act_id) by start time, filtered as given (empty
        statuses: any)."""
        ...

    async def charge(self, run_id: str, idempotency_key: str, event_name: str, count: int, now: int) -> bool:
        """Record a charge; False (and nothing recorded) when the run already has one with this key."""
        ...

    async def charged_event_counts(self, run_id: str) -> dict[str, int]: ...

    async def append_log(self, run_id: str, text: bytes, limit: int) -> int:
        """Add text at the end of the run's log, as much of it as keeps the log within `limit` bytes, in whole
        lines (rows.fitting); how many bytes were added. Appends to one log are
        applied one after the other."""
        ...

    async def log_size(self, run_id: str) -> int:
        """How many bytes the run's log holds."""
        ...

    async def log(self, run_id: str, start: int) -> bytes:
        """The run's log from byte `start` on (empty past its end)."""
        ...


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
