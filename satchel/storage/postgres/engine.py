"""The scale-out metadata engine: PostgreSQL for users, stores, grants, records, small bodies and sessions.

Large bodies live in the blob store it is given (S3, or local files on one machine). The engine holds no
state beyond its pool: any number of API nodes may run over one database, and every read sees every write
committed before it began.
"""

from __future__ import annotations

from satchel.settings import PostgresSettings
from satchel.storage.blobs.base import BlobStore
from satchel.storage.postgres.datasets import PostgresDatasets
from satchel.storage.postgres.db import Database
from satchel.storage.postgres.grants import PostgresGrants
from satchel.storage.postgres.migrations import migrate_connection
from satchel.storage.postgres.queues import PostgresQueues
from satchel.storage.postgres.records import PostgresRecords
from satchel.storage.postgres.runs import PostgresRuns
from satchel.storage.postgres.sessions import PostgresSessions
from satchel.storage.postgres.stores import PostgresStores
from satchel.storage.postgres.users import PostgresUsers


class PostgresEngine:
    def __init__(
        self,
        dsn: str,
        settings: PostgresSettings,
        blobs: BlobStore,
        *,
        inline_max: int,
        max_record_bytes: int,
    ) -> None:
        self.db = Database(dsn, settings)
        self.blobs = blobs
        self.users = PostgresUsers(self.db)
        self.grants = PostgresGrants(self.db)
        self.stores = PostgresStores(self.db)
        self.records = PostgresRecords(
            self.db, blobs, inline_max=inline_max, max_record_bytes=max_record_bytes
        )
        self.sessions = PostgresSessions(self.db)
        self.datasets = PostgresDatasets(self.db)
        self.queues = PostgresQueues(self.db)
        self.runs = PostgresRuns(self.db)

    async def open(self) -> None:
        """Connect the pool and bring the schema up to date (safe with several nodes starting at once)."""
        await self.db.open()
        try:
            async with self.db.connection() as conn:
                await migrate_connection(conn)
        except BaseException:
            await self.db.close()
            raise

    async def close(self) -> None:
        await self.db.close()
