"""The embedded engine: SQLite in WAL mode, one writer thread."""

from satchel.storage.sqlite.engine import SqliteEngine

__all__ = ["SqliteEngine"]
