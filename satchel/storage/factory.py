"""Pick and build the storage the settings ask for: a metadata engine, a blob store and a change feed.

- no `database`: SQLite in the data dir, its change feed a stamp file every process on the machine shares;
- `database=postgresql://...`: PostgreSQL, its change feed LISTEN/NOTIFY, so every node sees every change;
- no `blob_store`: files under the data dir; `blob_store=s3://...`: an S3-compatible object store.
The scale-out engines import only when asked for.
"""

from __future__ import annotations

from typing import Any

from satchel.settings import Settings
from satchel.storage.base import Storage
from satchel.storage.blobs.base import BlobStore
from satchel.storage.blobs.files import FileBlobs
from satchel.storage.feed import ChangeFeed, StampFeed
from satchel.storage.housekeeping import Background, BlobHousekeeping, every


def build_blobs(settings: Settings) -> BlobStore:
    url = settings.blob_store
    if not url:
        return FileBlobs(settings.data_dir / "blobs", fsync=settings.durability == "power")
    # An s3:// URL: settings.py refuses any other (urls.check_blob_store).
    from satchel.storage.blobs.s3 import S3Blobs  # noqa: PLC0415 - only when asked for

    return S3Blobs.from_url(url, settings.s3)


def build_engine(settings: Settings, blobs: BlobStore, *, serving: bool = True) -> tuple[Any, ChangeFeed]:
    """The metadata engine (its users, grants, stores, records and sessions tables) and the feed that reaches
    its readers. `serving`: for a server's process, which with several beside it hands its SQLite writes to
    one of them; a command writes itself."""
    common: dict[str, Any] = {
        "inline_max": settings.inline_max_bytes,
        "max_record_bytes": settings.max_record_bytes,
    }
    url = settings.database
    if not url:
        from satchel.storage.sqlite import SqliteEngine  # noqa: PLC0415

        feed = StampFeed.of(settings.data_dir)
        engine = SqliteEngine(
            settings.data_dir,
            blobs,
            fsync=settings.durability == "power",
            on_record_change=feed.record_changed,
            handoff=serving and settings.workers > 1,
            answer_seconds=settings.write_process_timeout_seconds,
            **common,
        )
        return engine, feed
    # A PostgreSQL URL: settings.py refuses any other (urls.check_database).
    from satchel.storage.postgres import PostgresEngine, PostgresFeed  # noqa: PLC0415

    return PostgresEngine(url, settings.postgres, blobs, **common), PostgresFeed(url)


def build_storage(settings: Settings, *, housekeeping: bool = True) -> Storage:
    """Everything the services need; `housekeeping=False` for short-lived commands (the CLI)."""
    blobs = build_blobs(settings)
    engine, feed = build_engine(settings, blobs, serving=housekeeping)
    storage = Storage(
        users=engine.users,
        grants=engine.grants,
        stores=engine.stores,
        records=engine.records,
        sessions=engine.sessions,
        datasets=engine.datasets,
        queues=engine.queues,
        runs=engine.runs,
        blobs=blobs,
        feed=feed,
    )
    storage.openers += [blobs.open, engine.open, feed.open]
    storage.closers += [blobs.close, engine.close, feed.close]
    if housekeeping:
        grace_ms = int(settings.blob_grace_seconds * 1000)
        purge = BlobHousekeeping(engine.records, blobs, grace_ms=grace_ms).purge
        tasks = Background()

        async def start() -> None:
            tasks.start(every(min(15.0, max(grace_ms / 1000, 0.5)), purge))

        storage.openers.append(start)
        storage.closers.append(tasks.stop)
    return storage
