"""The rules of Satchel, between the HTTP layer and storage; nothing here knows of requests or SQL."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from satchel.service.access import ANONYMOUS, Caller, Need
from satchel.service.lookups import Lookups
from satchel.service.records import KeyPage, Records
from satchel.service.retention import Retention
from satchel.service.stores import StorePage, Stores
from satchel.service.usage import Usage
from satchel.service.users import Users
from satchel.settings import Settings
from satchel.storage import Storage
from satchel.storage.housekeeping import Background, every

USAGE_FLUSH_SECONDS = 1.0


@dataclass(slots=True)
class Services:
    settings: Settings
    storage: Storage
    lookups: Lookups
    usage: Usage
    users: Users
    stores: Stores
    records: Records
    retention: Retention
    _tasks: Background = field(default_factory=Background)

    async def start(self, *, background: bool = True) -> None:
        """Open storage; with `background`, also count usage and sweep expired stores (a server does)."""
        await self.storage.open()
        if background:
            self._tasks.start(every(USAGE_FLUSH_SECONDS, self.usage.flush))
            self._tasks.start(self.retention.run_forever())

    async def stop(self) -> None:
        await self._tasks.stop()
        with contextlib.suppress(Exception):  # counted reads are lost only if the database is gone
            await self.usage.flush()
        await self.storage.close()


def build_services(settings: Settings, storage: Storage) -> Services:
    lookups = Lookups(storage)
    usage = Usage(storage.stores)
    stores = Stores(storage, lookups, usage)
    return Services(
        settings=settings,
        storage=storage,
        lookups=lookups,
        usage=usage,
        users=Users(storage, lookups),
        stores=stores,
        records=Records(
            storage.records,
            stores,
            usage,
            max_record_bytes=settings.max_record_bytes,
            max_decoded_bytes=settings.max_decoded_bytes,
        ),
        retention=Retention(
            storage.stores,
            usage,
            lookups,
            retention_seconds=settings.retention_seconds,
            interval_seconds=settings.sweep_interval_seconds,
        ),
    )


__all__ = [
    "ANONYMOUS",
    "Caller",
    "KeyPage",
    "Need",
    "Records",
    "Services",
    "StorePage",
    "Stores",
    "build_services",
]
