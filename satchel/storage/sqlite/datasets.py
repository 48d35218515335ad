"""Datasets' items in SQLite."""

from __future__ import annotations

from satchel.storage.sqlite.db import Database


class SqliteDatasets:
    def __init__(self, db: Database) -> None:
        self.db = db
