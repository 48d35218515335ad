"""Request queues' requests in PostgreSQL."""

from __future__ import annotations

from satchel.storage.postgres.db import Database


class PostgresQueues:
    def __init__(self, db: Database) -> None:
        self.db = db
