"""The plain rows and domain values that cross the storage seam.

Rows are built from a database row by column name (`from_row`), so an engine's SELECT may list its columns in
any order and carry more than a row needs. The one exception is the hottest read, a record by key: its head is
taken off a plain tuple whose SELECT lists RECORD_HEAD_FIELDS, the head's own field names, first and in order.
Times are epoch milliseconds throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Protocol


class Columns(Protocol):
    """A database row read by column name (sqlite3.Row, asyncpg.Record, a dict)."""

    def __getitem__(self, name: str, /) -> Any: ...


class GeneralAccess(StrEnum):
    """Who may read a store without a grant: the API's `generalAccess` values."""

    RESTRICTED = "RESTRICTED"
    ANYONE_WITH_ID_CAN_READ = "ANYONE_WITH_ID_CAN_READ"
    ANYONE_WITH_NAME_CAN_READ = "ANYONE_WITH_NAME_CAN_READ"
    FOLLOW_USER_SETTING = "FOLLOW_USER_SETTING"  # the owner's default decides


class Grant(StrEnum):
    """A right a store's owner gave another user."""

    READ = "read"
    WRITE = "write"


class StorageKind(StrEnum):
    """The three storages, siblings in one table: the same ids, names, access, sharing and retention."""

    KEY_VALUE_STORE = "key-value-store"
    DATASET = "dataset"
    REQUEST_QUEUE = "request-queue"


class Ownership(StrEnum):
    """Which stores a listing covers, from the caller's side."""

    ALL = "all"
    OWNED = "owned"
    SHARED = "shared"


@dataclass(slots=True)
class UserRow:
    id: str
    username: str
    created_at: int
    # What the user's stores with generalAccess FOLLOW_USER_SETTING mean.
    default_general_access: GeneralAccess = GeneralAccess.RESTRICTED

    @classmethod
    def from_row(cls, row: Columns) -> UserRow:
        return cls(
            row["id"], row["username"], row["created_at"], GeneralAccess(row["default_general_access"])
        )


@dataclass(slots=True)
class TokenRow:
    hash: str  # SHA-256 hex digest of the token; the token itself is never stored
    user_id: str
    created_at: int
    name: str | None = None  # given by its owner to tell tokens apart

    @classmethod
    def from_row(cls, row: Columns) -> TokenRow:
        return cls(row["hash"], row["user_id"], row["created_at"], row["name"])


@dataclass(slots=True)
class SessionRow:
    """A Console sign-in, made from one token; it ends with that token."""

    hash: str  # SHA-256 hex digest of the session's id (the cookie); the id itself is never stored
    token_hash: str  # the token it was made from
    created_at: int
    expires_at: int

    @classmethod
    def from_row(cls, row: Columns) -> SessionRow:
        return cls(row["hash"], row["token_hash"], row["created_at"], row["expires_at"])


@dataclass(slots=True)
class GrantRow:
    """One user's right on another user's store."""

    user_id: str
    username: str
    access: Grant
    created_at: int

    @classmethod
    def from_row(cls, row: Columns) -> GrantRow:
        return cls(row["user_id"], row["username"], Grant(row["access"]), row["created_at"])


@dataclass(slots=True)
class StoreStats:
    read_count: int = 0
    write_count: int = 0
    delete_count: int = 0
    list_count: int = 0
    storage_bytes: int = 0


@dataclass(slots=True)
class StorageTotals:
    """What the whole storage holds, for /metrics."""

    storages: list[tuple[str, int, int]]  # per kind: the kind, how many, their bytes (stats' storageBytes)
    records: int  # key-value store records
    dataset_items: int
    requests: int  # request queue requests


@dataclass(slots=True)
class StoreRow:
    pk: int
    id: str
    user_id: str
    username: str
    name: str | None
    title: str | None
    created_at: int
    modified_at: int
    accessed_at: int
    general_access: GeneralAccess
    url_signing_secret_key: str
    schema: str | None  # JSON text as the client sent it
    act_id: str | None = None
    act_run_id: str | None = None
    owner_default_access: GeneralAccess = GeneralAccess.RESTRICTED  # for FOLLOW_USER_SETTING
    stats: StoreStats = field(default_factory=StoreStats)
    kind: StorageKind = StorageKind.KEY_VALUE_STORE

    @classmethod
    def from_row(cls, row: Columns) -> StoreRow:
        """A store from STORE_COLUMNS (the owner's as `username` and `owner_default_access`)."""
        return cls(
            pk=row["pk"],
            id=row["id"],
            user_id=row["user_id"],
            username=row["username"],
            name=row["name"],
            title=row["title"],
            created_at=row["created_at"],
            modified_at=row["modified_at"],
            accessed_at=row["accessed_at"],
            general_access=GeneralAccess(row["general_access"]),
            url_signing_secret_key=row["url_signing_secret_key"],
            schema=row["schema"],
            act_id=row["act_id"],
            act_run_id=row["act_run_id"],
            owner_default_access=GeneralAccess(row["owner_default_access"]),
            stats=StoreStats(
                row["read_count"], row["write_count"], row["delete_count"], row["list_count"],
                row["storage_bytes"],
            ),
            kind=StorageKind(row["kind"]),
        )  # fmt: skip


# What every SQL engine selects for a StoreRow: `s` is the stores table (or rows like it), `u` the owner.
STORE_COLUMNS = (
    "s.pk, s.id, s.kind, s.user_id, u.username, s.name, s.title, s.created_at, s.modified_at, s.accessed_at,"
    " s.general_access, s.url_signing_secret_key, s.schema, s.act_id, s.act_run_id,"
    " u.default_general_access AS owner_default_access,"
    " s.read_count, s.write_count, s.delete_count, s.list_count, s.storage_bytes"
)
OWNER_JOIN = "JOIN users u ON u.id = s.user_id"
STORE_SELECT = f"SELECT {STORE_COLUMNS} FROM stores s {OWNER_JOIN}"  # noqa: S608 - constants only
# A page of stores leaves their schemas out: a list never shows them, and reading 1,000 of up to 64 KiB each
# took 60-120 ms on the event loop.
PAGE_COLUMNS = STORE_COLUMNS.replace("s.schema", "NULL AS schema")


@dataclass(slots=True)
class NewStore:
    id: str
    user_id: str
    name: str | None
    general_access: GeneralAccess
    url_signing_secret_key: str
    schema: str | None
    created_at: int
    kind: StorageKind = StorageKind.KEY_VALUE_STORE


@dataclass(slots=True)
class StoreUsage:
    """Reads and listings of one store not yet added to its row, and its latest use."""

    reads: int = 0
    lists: int = 0
    accessed_at: int = 0


@dataclass(slots=True)
class RecordHead:
    """What is known about a record without its body."""

    key: str
    content_type: str
    content_encoding: str | None  # None means identity
    size: int  # bytes as stored (possibly compressed)
    raw_size: int  # bytes after decoding
    modified_at: int
    # SHA-256 (hex) of the body as stored, the bytes served: the record's strong ETag. None for a record
    # written before the column existed, until the service fills it on first read.
    etag: str | None = None

    @classmethod
    def from_row(cls, row: Columns) -> RecordHead:
        return cls(
            row["key"], row["content_type"], row["content_encoding"], row["size"], row["raw_size"],
            row["modified_at"], row["etag"],
        )  # fmt: skip


# For RecordHead(*row[:len(RECORD_HEAD_FIELDS)]) off a SELECT that names these first: by name, as the SELECT
# is built from them, without a sqlite3.Row's lookups (1-2.7 us of a 20 us GET that misses the cache).
RECORD_HEAD_FIELDS = tuple(f.name for f in fields(RecordHead))


@dataclass(slots=True)
class KeyItem:
    key: str
    size: int


@dataclass(slots=True)
class DeploymentMark:
    """The mark a database shares with its blob store (storage/pairing.py). `paired`: the blob store was
    seen to hold it; until then, the node that wrote it may be writing it to its blob store still (or have
    died before it did), so a blob store without it is not yet refused."""

    mark: str
    paired: bool

    @classmethod
    def from_row(cls, row: Columns) -> DeploymentMark:
        return cls(row["mark"], row["paired_at"] is not None)


@dataclass(slots=True)
class DatasetCounts:
    """A dataset's items: all of them, and the clean ones (with a field that is not hidden, `#...`)."""

    item_count: int = 0
    clean_item_count: int = 0


@dataclass(slots=True)
class ItemBatch:
    """Items pushed together, each as compact JSON; appended whole and in order, or not at all."""

    items: list[bytes]
    clean_count: int  # how many of them are clean
    size: int  # their bytes, added to the dataset's storageBytes


class RunStatus(StrEnum):
    """An Actor run's status, as the API writes it."""

    READY = "READY"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMING_OUT = "TIMING-OUT"
    TIMED_OUT = "TIMED-OUT"
    ABORTING = "ABORTING"
    ABORTED = "ABORTED"


# A run in one of these has ended: it has a finishedAt, and aborting it changes nothing.
FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.ABORTED})


def aborted(now: int, *, gracefully: bool) -> tuple[RunStatus, int | None]:
    """An aborted run's status and finishedAt: ABORTED now, or ABORTING, unfinished until its command ends."""
    return (RunStatus.ABORTING, None) if gracefully else (RunStatus.ABORTED, now)


def fitting(text: bytes, room: int) -> bytes:
    """As much of text as fits in `room` bytes, in whole lines: all of it, or up to its last line's end that
    fits (nothing, if none does)."""
    if len(text) <= room:
        return text
    return text[: text.rfind(b"\n", 0, max(room, 0)) + 1]


def from_pieces(rows: Sequence[Any], start: int) -> bytes:
    """A log from byte `start` on, out of its pieces (`start`, `body`) in order that end past it."""
    out = b"".join(bytes(row["body"]) for row in rows)
    return out[start - rows[0]["start"] :] if rows and rows[0]["start"] < start else out


@dataclass(slots=True)
class ActorRow:
    """An Actor, made on first use by its owner and name: only as far as runs need one."""

    id: str
    user_id: str
    username: str
    name: str
    created_at: int
    modified_at: int

    @classmethod
    def from_row(cls, row: Columns) -> ActorRow:
        return cls(
            row["id"], row["user_id"], row["username"], row["name"], row["created_at"], row["modified_at"]
        )


@dataclass(slots=True)
class RunRow:
    """A run of an Actor and its default storages (ids of stores rows, which carry actId/actRunId back)."""

    id: str
    act_id: str
    user_id: str
    status: RunStatus
    started_at: int
    finished_at: int | None
    exit_code: int | None
    status_message: str | None
    is_status_message_terminal: bool
    origin: str
    general_access: GeneralAccess
    timeout_secs: int
    memory_mbytes: int
    input_body_len: int
    default_key_value_store_id: str
    default_dataset_id: str
    default_request_queue_id: str
    owner_default_access: GeneralAccess = GeneralAccess.RESTRICTED  # for FOLLOW_USER_SETTING

    @classmethod
    def from_row(cls, row: Columns) -> RunRow:
        """A run from RUN_SELECT (the owner's default access as `owner_default_access`)."""
        return cls(
            id=row["id"],
            act_id=row["act_id"],
            user_id=row["user_id"],
            status=RunStatus(row["status"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            exit_code=row["exit_code"],
            status_message=row["status_message"],
            is_status_message_terminal=bool(row["is_status_message_terminal"]),
            origin=row["origin"],
            general_access=GeneralAccess(row["general_access"]),
            timeout_secs=row["timeout_secs"],
            memory_mbytes=row["memory_mbytes"],
            input_body_len=row["input_body_len"],
            default_key_value_store_id=row["default_key_value_store_id"],
            default_dataset_id=row["default_dataset_id"],
            default_request_queue_id=row["default_request_queue_id"],
            owner_default_access=GeneralAccess(row["owner_default_access"]),
        )


# What a run's owner may change after it starts (RunTable.update takes these columns by name).
RUN_CHANGEABLE = frozenset(
    {"status", "finished_at", "exit_code", "status_message", "is_status_message_terminal", "general_access"}
)
# The columns a new run is inserted with, in the order every engine's INSERT lists them.
RUN_INSERTED = (
    "id", "act_id", "user_id", "status", "started_at", "finished_at", "exit_code", "status_message",
    "is_status_message_terminal", "origin", "general_access", "timeout_secs", "memory_mbytes",
    "input_body_len", "default_key_value_store_id", "default_dataset_id", "default_request_queue_id",
)  # fmt: skip
RUN_COLUMNS = (
    "r.id, r.act_id, r.user_id, r.status, r.started_at, r.finished_at, r.exit_code, r.status_message,"
    " r.is_status_message_terminal, r.origin, r.general_access, r.timeout_secs, r.memory_mbytes,"
    " r.input_body_len, r.default_key_value_store_id, r.default_dataset_id, r.default_request_queue_id,"
    " u.default_general_access AS owner_default_access"
)
RUN_SELECT = f"SELECT {RUN_COLUMNS} FROM runs r JOIN users u ON u.id = r.user_id"  # noqa: S608 - constants
ACTOR_SELECT = (
    "SELECT a.id, a.user_id, u.username, a.name, a.created_at, a.modified_at"
    " FROM actors a JOIN users u ON u.id = a.user_id"
)


# --- request queues


@dataclass(slots=True)
class QueueState:
    """What a request queue's own row holds beside the store's: counts, its clock and its clients."""

    total: int = 0
    handled: int = 0
    modified_at: int = 0  # queueModifiedAt: the last change of a request or a lock; 0 before any
    had_multiple_clients: bool = False
    client_key: str | None = None  # the first client seen; "" for a call without a clientKey

    @classmethod
    def from_row(cls, row: Columns) -> QueueState:
        return cls(
            row["total_count"], row["handled_count"], row["queue_modified_at"],
            bool(row["had_multiple_clients"]), row["client_key"],
        )  # fmt: skip


@dataclass(slots=True)
class RequestRow:
    """One request of a queue: its JSON as stored (id included) and where it stands."""

    id: str
    body: bytes  # the whole request as JSON, unknown fields kept
    handled_at: int | None
    lock_expires_at: int | None  # a lock is held only while this is later than now
    lock_client: str | None

    @classmethod
    def from_row(cls, row: Columns) -> RequestRow:
        return cls(
            row["id"], bytes(row["body"]), row["handled_at"], row["lock_expires_at"], row["lock_client"]
        )


REQUEST_COLUMNS = "id, body, handled_at, lock_expires_at, lock_client"


@dataclass(slots=True)
class NewRequest:
    """A request to add or to write over: its id (derived from its uniqueKey), JSON, and handled time."""

    id: str
    body: bytes
    handled_at: int | None


@dataclass(slots=True)
class RequestAdded:
    """What an add or an update found: the state of the request before it."""

    id: str
    was_already_present: bool
    was_already_handled: bool


@dataclass(slots=True)
class LockedHead:
    """What a head lock took, and the queue as it left it."""

    items: list[RequestRow]
    state: QueueState
    has_locked: bool  # whether any pending request of the queue is locked, by anyone
