"""The stores an import writes into and an export reads from: the storage in this process, or a running
server over its API. The folder walking and the layout do not know which."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from satchel.clock import iso
from satchel.crawlee_storage.files import async_chunks
from satchel.errors import NotFound
from satchel.remote import Remote, RemoteError
from satchel.service.access import Caller
from satchel.service.encoding import plain_stream
from satchel.service.services import Services
from satchel.service.validation import NAME_RE
from satchel.storage import StoreRow

NO_LIMIT = 2**63  # a server refuses a record over its own limit, which its client does not know


@dataclass(slots=True)
class StoreInfo:
    """What an export writes of a store: its id and name, and its times as the API shows them."""

    id: str
    name: str | None
    created_at: str
    modified_at: str
    accessed_at: str


@dataclass(slots=True)
class RecordOut:
    """A record as it is read out: its plain bytes (no Content-Encoding), to be read before the next one."""

    key: str
    content_type: str
    chunks: AsyncIterator[bytes]


class Stores(Protocol):
    """Satchel's errors (SatchelError) tell what the stores refused; a refused record is skipped."""

    record_limit: int  # bytes: a larger file is skipped unread

    async def find(self, ref: str) -> StoreInfo: ...

    async def named(self, name: str) -> str:
        """The id of the caller's store of that name, made if missing."""
        ...

    def records(self, store_id: str) -> AsyncIterator[RecordOut]: ...

    async def put(self, store_id: str, key: str, content_type: str, fd: int) -> None:
        """Store the open file's bytes, from its start, as the record."""
        ...


class LocalStores:
    """The storage the command opened itself, acting as one user."""

    def __init__(self, services: Services, caller: Caller) -> None:
        self.services = services
        self.caller = caller
        self.record_limit = services.records.max_record_bytes

    async def find(self, ref: str) -> StoreInfo:
        try:
            row, _ = await self.services.stores.get(self.caller, ref)
        except NotFound:
            if "~" in ref or NAME_RE.fullmatch(ref) is None:
                raise
            row, _ = await self.services.stores.get(self.caller, f"~{ref}")  # a name, as Remote reads it
        return _info(row)

    async def named(self, name: str) -> str:
        row, _ = await self.services.stores.get_or_create(self.caller, name, None)
        return row.id

    async def records(self, store_id: str) -> AsyncIterator[RecordOut]:
        _, records = await self.services.records.all_records(
            self.caller, store_id, prefix=None, collection=None
        )
        async for record in records:
            yield RecordOut(record.head.key, record.head.content_type, plain_stream(record))

    async def put(self, store_id: str, key: str, content_type: str, fd: int) -> None:
        await self.services.records.put(
            self.caller,
            store_id,
            key,
            content_type=content_type,
            content_encoding=None,
            chunks=async_chunks(fd),
        )


class RemoteStores:
    """A running server, as the token's user."""

    record_limit = NO_LIMIT

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    async def find(self, ref: str) -> StoreInfo:
        data = await self.remote.store(ref)
        return StoreInfo(data["id"], data["name"], data["createdAt"], data["modifiedAt"], data["accessedAt"])

    async def named(self, name: str) -> str:
        data = await self.remote.named_store(name)
        return str(data["id"])

    async def records(self, store_id: str) -> AsyncIterator[RecordOut]:
        async for item in self.remote.keys(store_id):
            try:
                async with self.remote.record(store_id, item["key"]) as response:
                    content_type = response.headers.get("content-type", "application/octet-stream")
                    yield RecordOut(item["key"], content_type, response.aiter_bytes())
            except RemoteError as error:
                if error.status != 404:  # deleted since it was listed: not in the store any more
                    raise

    async def put(self, store_id: str, key: str, content_type: str, fd: int) -> None:
        # As many bytes as the Content-Length says, even if the file grows meanwhile.
        size = os.fstat(fd).st_size
        await self.remote.put(store_id, key, content_type, lambda: async_chunks(fd, size), size)


def _info(row: StoreRow) -> StoreInfo:
    return StoreInfo(row.id, row.name, iso(row.created_at), iso(row.modified_at), iso(row.accessed_at))
