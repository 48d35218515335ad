"""The plain rows and domain values that cross the storage seam.

Rows are built from a database row by column name (`from_row`), so an engine's SELECT may list its columns in
any order and carry more than a row needs. Times are epoch milliseconds throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

    @classmethod
    def from_row(cls, row: Columns) -> TokenRow:
        return cls(row["hash"], row["user_id"], row["created_at"])


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

    @classmethod
    def from_row(cls, row: Columns) -> RecordHead:
        return cls(
            row["key"], row["content_type"], row["content_encoding"], row["size"], row["raw_size"],
            row["modified_at"],
        )  # fmt: skip


@dataclass(slots=True)
class KeyItem:
    key: str
    size: int
