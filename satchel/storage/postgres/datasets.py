"""Datasets' items in PostgreSQL."""

from __future__ import annotations

from satchel.storage.postgres.db import Database


class PostgresDatasets:
    def __init__(self, db: Database) -> None:
        self.db = db
