"""The embedded engine: one SQLite file for metadata and small bodies, beside a blob store for large ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from satchel.storage.blobs.base import BlobStore
from satchel.storage.housekeeping import Background, every
from satchel.storage.sqlite.datasets import SqliteDatasets
from satchel.storage.sqlite.db import RECLAIM_SECONDS, RESERVE_BYTES, Database
from satchel.storage.sqlite.grants import SqliteGrants
from satchel.storage.sqlite.link import ANSWER_SECONDS
from satchel.storage.sqlite.queues import SqliteQueues
from satchel.storage.sqlite.records import SqliteRecords
from satchel.storage.sqlite.runs import SqliteRuns
from satchel.storage.sqlite.sessions import SqliteSessions
from satchel.storage.sqlite.stores import SqliteStores
from satchel.storage.sqlite.users import SqliteUsers

# How often committed pages move from the WAL into the database file (the writer itself never does it).
CHECKPOINT_SECONDS = 0.5


class SqliteEngine:
    def __init__(
        self,
        data_dir: Path,
        blobs: BlobStore,
        *,
        fsync: bool = False,
        inline_max: int,
        max_record_bytes: int,
        reserve_bytes: int = RESERVE_BYTES,
        on_record_change: Callable[[int, str], None] | None = None,
        handoff: bool = False,
        answer_seconds: float = ANSWER_SECONDS,
    ) -> None:
        self.db = Database(
            data_dir,
            fsync=fsync,
            reserve_bytes=reserve_bytes,
            handoff=handoff,
            answer_seconds=answer_seconds,
            on_record_change=on_record_change,
        )
        self.users = SqliteUsers(self.db)
        self.grants = SqliteGrants(self.db)
        self.stores = SqliteStores(self.db)
        self.records = SqliteRecords(
            self.db,
            blobs,
            inline_max=inline_max,
            max_record_bytes=max_record_bytes,
        )
        self.sessions = SqliteSessions(self.db)
        self.datasets = SqliteDatasets(self.db)
        self.queues = SqliteQueues(self.db)
        self.runs = SqliteRuns(self.db)
        self._tasks = Background()

    async def open(self) -> None:
        await self.db.open()
        self._tasks.start(every(CHECKPOINT_SECONDS, self.db.checkpoint))
        self._tasks.start(every(5.0, self.db.restore_reserve))
        self._tasks.start(every(RECLAIM_SECONDS, self.db.reclaim))

    async def close(self) -> None:
        await self._tasks.stop()
        await self.db.close()
