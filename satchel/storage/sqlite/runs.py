"""Actors and runs in SQLite."""

from __future__ import annotations

from satchel.storage.sqlite.db import Database


class SqliteRuns:
    def __init__(self, db: Database) -> None:
        self.db = db
