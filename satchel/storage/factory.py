"""Pick and build the storage engine the settings ask for."""

from __future__ import annotations

from satchel.settings import Settings
from satchel.storage.base import Engine
from satchel.storage.sqlite.engine import SqliteEngine


def build_engine(settings: Settings) -> Engine:
    return SqliteEngine(
        settings.data_dir,
        fsync=settings.durability == "power",
        inline_max=settings.inline_max_bytes,
        max_record_bytes=settings.max_record_bytes,
        blob_grace_ms=int(settings.blob_grace_seconds * 1000),
    )
