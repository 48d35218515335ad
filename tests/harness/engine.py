"""For tests of the storage engines in process: an upload as the service hands it over, a store to work in,
and a runner of work on an open storage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from satchel.settings import Settings
from satchel.storage import GeneralAccess, NewStore, Storage, StoreRow
from satchel.storage.factory import build_storage

T = TypeVar("T")
Run = Callable[[Callable[[Storage], Awaitable[Any]]], Any]


class Body:
    """An upload as the service hands it over: chunks, and the decoded size once read. `fail_after`: the
    client goes away at that offset."""

    def __init__(
        self,
        data: bytes,
        *,
        chunk: int = 64 * 1024,
        fail_after: int | None = None,
    ) -> None:
        self.data = data
        self.chunk = chunk
        self.fail_after = fail_after
        self.raw_size = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, max(len(self.data), 1), self.chunk):
            if self.fail_after is not None and start >= self.fail_after:
                raise ConnectionResetError("the client went away")
            piece = self.data[start : start + self.chunk]
            self.raw_size += len(piece)
            yield piece


async def owned_store(storage: Any, name: str = "n") -> StoreRow:
    """A store named `name` of a new user "u", on a storage or an engine: how most engine tests begin."""
    await storage.users.create("u", "owner", 0, default_general_access=GeneralAccess.RESTRICTED)
    store, _ = await storage.stores.create(NewStore("s", "u", name, GeneralAccess.RESTRICTED, "x", None, 0))
    assert isinstance(store, StoreRow)
    return store


def runner(settings: Callable[[], Settings]) -> Run:
    """Run work(storage) on a storage opened from these settings inside one event loop, and close it after."""

    def go(work: Callable[[Storage], Awaitable[T]]) -> T:
        async def inner() -> T:
            storage = build_storage(settings(), housekeeping=False)
            await storage.open()
            try:
                return await work(storage)
            finally:
                await storage.close()

        return asyncio.run(inner())

    return go
