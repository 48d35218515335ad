"""The scale-out engine: PostgreSQL metadata (with small bodies inline), and a LISTEN/NOTIFY change feed."""

from satchel.storage.postgres.engine import PostgresEngine
from satchel.storage.postgres.feed import PostgresFeed
from satchel.storage.postgres.migrations import migrate

__all__ = ["PostgresEngine", "PostgresFeed", "migrate"]
