"""The storage interface: rows it hands out and the operations every engine provides.

Engines know nothing of permissions or HTTP; they store what the service decided and return plain rows.
Times are epoch milliseconds throughout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(slots=True)
class UserRow:
    id: str
    username: str
    created_at: int
    # What the user's stores with generalAccess FOLLOW_USER_SETTING mean.
    default_general_access: str = "RESTRICTED"


@dataclass(slots=True)
class TokenRow:
    hash: str  # SHA-256 hex digest of the token; the token itself is never stored
    user_id: str
    created_at: int


@dataclass(slots=True)
class GrantRow:
    """One user's right on another user's store: "read" or "write"."""

    user_id: str
    username: str
    access: str
    created_at: int


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
    general_access: str
    url_signing_secret_key: str
    schema: str | None  # JSON text as the client sent it
    act_id: str | None = None
    act_run_id: str | None = None
    owner_default_access: str = "RESTRICTED"  # the owner's default, for FOLLOW_USER_SETTING
    stats: StoreStats = field(default_factory=StoreStats)


@dataclass(slots=True)
class RecordHead:
    """What is known about a record without its body."""

    key: str
    content_type: str
    content_encoding: str | None  # None means identity
    size: int  # bytes as stored (possibly compressed)
    raw_size: int  # bytes after decoding
    modified_at: int


@dataclass(slots=True)
class RecordRead:
    """A record ready to be sent: its body is either inline bytes or a file to stream."""

    head: RecordHead
    body: bytes | None
    path: Path | None

    def chunks(self, size: int = 256 * 1024) -> Iterator[bytes]:
        """The body as stored (still in its Content-Encoding): inline at once, or read from its file.

        The file is opened by this call, not when iteration starts, so a record replaced meanwhile stays
        readable, and a file already gone raises FileNotFoundError here.
        """
        if self.path is None:
            return iter((self.body or b"",))
        return _read(open(self.path, "rb"), size)


def _read(f: BinaryIO, size: int) -> Iterator[bytes]:
    with f:
        while chunk := f.read(size):
            yield chunk


@dataclass(slots=True)
class KeyItem:
    key: str
    size: int


@dataclass(slots=True)
class NewStore:
    id: str
    user_id: str
    name: str | None
    general_access: str
    url_signing_secret_key: str
    schema: str | None
    created_at: int


class UploadBody(Protocol):
    """A record body as it arrives: chunks as stored, and their decoded length once all are read."""

    raw_size: int

    def __aiter__(self) -> AsyncIterator[bytes]: ...


class Engine(Protocol):
    """One storage engine. Every method is safe to call concurrently from the event loop."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # users and tokens
    async def user_by_token_hash(self, token_hash: str) -> UserRow | None: ...
    async def user_by_name(self, username: str) -> UserRow | None: ...
    async def user_by_id(self, user_id: str) -> UserRow | None: ...
    async def list_users(self) -> list[UserRow]: ...
    async def create_user(
        self, user_id: str, username: str, now: int, *, default_general_access: str = "RESTRICTED"
    ) -> UserRow: ...
    async def set_default_general_access(self, user_id: str, access: str) -> None: ...
    async def add_token(self, user_id: str, token_hash: str, now: int) -> None: ...
    async def list_tokens(self, user_id: str | None = None) -> list[TokenRow]: ...
    async def delete_token(self, token_hash: str) -> bool: ...

    # sharing
    async def grant_for(self, store_pk: int, user_id: str) -> str | None:
        """The right ("read" or "write") a store's owner gave the user, if any; may answer from a cache."""
        ...

    async def set_grant(self, store_pk: int, user_id: str, access: str | None, now: int) -> None:
        """Give the user "read" or "write" on the store, or take their right away with None."""
        ...

    async def list_grants(self, store_pk: int) -> list[GrantRow]: ...

    # stores
    async def create_store(self, new: NewStore) -> tuple[StoreRow, bool]:
        """Insert a store; with a name already taken by its user, return the existing one and False."""
        ...

    async def store_by_id(self, store_id: str, *, cached: bool = False) -> StoreRow | None:
        """cached=True may answer from a cache: identity and access are current, stats and times may lag."""
        ...

    async def store_by_name(self, user_id: str, name: str) -> StoreRow | None: ...
    async def list_stores(
        self, user_id: str, *, ownership: str, unnamed: bool, offset: int, limit: int, desc: bool
    ) -> tuple[int, list[tuple[StoreRow, str | None]]]:
        """A page of the stores a user owns ("owned"), was granted ("shared") or both ("all").

        Each comes with the user's grant on it (None for their own), in order of creation.
        """
        ...

    async def update_store(
        self, pk: int, *, name: str | None, general_access: str, title: str | None, now: int
    ) -> StoreRow:
        """Rename (None makes it unnamed) and set access; raises Conflict when the name is taken."""
        ...

    async def delete_store(self, pk: int) -> None: ...
    async def expired_stores(self, cutoff: int) -> list[int]:
        """Unnamed stores whose last use (read, write or list) is older than cutoff."""
        ...

    # records
    async def read_record(self, store_pk: int, key: str, *, now: int) -> RecordRead | None: ...
    async def head_record(self, store_pk: int, key: str, *, now: int) -> RecordHead | None: ...
    async def write_record(
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

    async def delete_record(self, store_pk: int, key: str, *, now: int) -> bool: ...
    async def list_keys(
        self, store_pk: int, *, prefix: str, exclusive_start_key: str | None, limit: int, now: int
    ) -> list[KeyItem]:
        """Up to limit keys in UTF-8 binary order, after exclusive_start_key, starting with prefix."""
        ...

    def iter_records(self, store_pk: int, *, prefix: str) -> AsyncIterator[RecordRead]: ...
