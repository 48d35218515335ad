"""Every service over one storage, built and started together: what the API, the Console and commands use."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from satchel.service.datasets import Datasets
from satchel.service.lookups import Lookups
from satchel.service.queues import RequestQueues
from satchel.service.record_cache import RecordCache
from satchel.service.records import Records
from satchel.service.retention import Retention
from satchel.service.runs import Runs
from satchel.service.sessions import Sessions
from satchel.service.stores import Stores
from satchel.service.usage import Usage
from satchel.service.users import Users
from satchel.settings import MIB, Settings
from satchel.storage import Storage, StorageKind
from satchel.storage.factory import build_storage
from satchel.storage.housekeeping import Background, every

USAGE_FLUSH_SECONDS = 1.0
SESSION_PURGE_SECONDS = 300.0  # expired sessions are refused at once; this only reclaims their rows


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
    sessions: Sessions
    datasets: Datasets
    queues: RequestQueues
    runs: Runs
    _tasks: Background = field(default_factory=Background)
    # Set once the server stops: answers that would go on for long (a followed run log) end.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, *, background: bool = True) -> None:
        """Open storage; with `background`, also count usage and sweep expired stores and sessions (a server
        does)."""
        await self.storage.open()
        if background:
            self._tasks.start(every(USAGE_FLUSH_SECONDS, self.usage.flush))
            self._tasks.start(self.retention.run_forever())
            lifetime = self.settings.console_session_hours * 3600
            self._tasks.start(every(max(min(SESSION_PURGE_SECONDS, lifetime), 1.0), self.sessions.purge))

    async def stop(self) -> None:
        self.stopping.set()
        await self._tasks.stop()
        with contextlib.suppress(Exception):  # counted reads are lost only if the database is gone
            await self.usage.flush()
        await self.storage.close()


def build_services(settings: Settings, storage: Storage) -> Services:
    lookups = Lookups(storage)
    usage = Usage(storage.stores)
    stores = Stores(storage, lookups, usage)
    users = Users(storage, lookups)
    datasets = Datasets(
        storage,
        Stores(storage, lookups, usage, StorageKind.DATASET),
        max_payload_bytes=settings.max_items_payload_bytes,
    )
    queues = RequestQueues(storage, Stores(storage, lookups, usage, StorageKind.REQUEST_QUEUE))
    return Services(
        settings=settings,
        storage=storage,
        lookups=lookups,
        usage=usage,
        users=users,
        stores=stores,
        records=Records(
            storage.records,
            stores,
            usage,
            RecordCache(storage.feed, max_bytes=settings.record_cache_mb * MIB),
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
        sessions=Sessions(
            storage.sessions, users, lookups, lifetime_seconds=settings.console_session_hours * 3600
        ),
        datasets=datasets,
        queues=queues,
        runs=Runs(storage, stores, datasets.stores, queues.stores),
    )


def build_services_from(settings: Settings, *, housekeeping: bool = True) -> Services:
    """The services over the storage the settings name: what a server runs, and what a command on the data
    dir or database uses without one."""
    return build_services(settings, build_storage(settings, housekeeping=housekeeping))
