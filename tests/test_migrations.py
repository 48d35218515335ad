"""A database made by an earlier Satchel keeps everything through the migrations that made storages of three
kinds: its stores stay key-value stores with their records, names and grants, and their names become free for
a dataset or a request queue.

Each test builds the old schema by the steps released before kinds (the schema a user's database has today),
writes data the old way, then opens it with the current engine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import asyncpg
import pytest

from satchel.settings import PostgresSettings
from satchel.storage import GeneralAccess, NewStore, StorageKind
from satchel.storage.blobs.files import FileBlobs
from satchel.storage.postgres import PostgresEngine
from satchel.storage.postgres.migrations import STEPS as PG_STEPS
from satchel.storage.sqlite.engine import SqliteEngine
from satchel.storage.sqlite.migrations import STEPS as SQLITE_STEPS
from satchel.storage.sqlite.migrations import statements
from tests.harness.postgres import Postgres, start_postgres, stop_postgres

SQLITE_BEFORE_KINDS = 3  # steps released before stores had kinds
PG_BEFORE_KINDS = 2
OLD_ROWS = (
    "INSERT INTO users (id, username, created_at) VALUES ('u1', 'alice', 1), ('u2', 'bob', 1)",
    "INSERT INTO stores (pk, id, user_id, name, created_at, modified_at, accessed_at, general_access,"
    " url_signing_secret_key) VALUES (7, 'store1', 'u1', 'crawl', 1, 2, 3, 'RESTRICTED', 'secret')",
    "INSERT INTO records (store_pk, key, content_type, size, raw_size, modified_at, body)"
    " VALUES (7, 'INPUT', 'application/json', 2, 2, 5, '{}')",
    "INSERT INTO grants (store_pk, user_id, access, created_at) VALUES (7, 'u2', 'read', 9)",
)


async def _check(engine: SqliteEngine | PostgresEngine) -> None:
    await engine.open()
    try:
        store = await engine.stores.by_name("u1", StorageKind.KEY_VALUE_STORE, "crawl")
        assert store is not None
        assert (store.id, store.pk, store.kind, store.url_signing_secret_key) == (
            "store1", 7, StorageKind.KEY_VALUE_STORE, "secret",
        )  # fmt: skip
        record = await engine.records.read(store.pk, "INPUT")
        assert record is not None
        assert record.head.content_type == "application/json"
        grant = await engine.grants.get(store.pk, "u2")
        assert grant is not None
        assert grant.value == "read"
        twin, created = await engine.stores.create(
            NewStore("ds1", "u1", "crawl", GeneralAccess.RESTRICTED, "k", None, 10, kind=StorageKind.DATASET)
        )
        assert created
        assert twin.kind is StorageKind.DATASET
        again, created = await engine.stores.create(
            NewStore("store2", "u1", "crawl", GeneralAccess.RESTRICTED, "k", None, 11)
        )
        assert (again.id, created) == ("store1", False)
    finally:
        await engine.close()


def test_an_embedded_database_from_before_kinds_keeps_its_stores(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / "satchel.db", isolation_level=None)
    conn.executescript(resources.files("satchel.storage.sqlite").joinpath("schema.sql").read_text())
    for step in SQLITE_STEPS[:SQLITE_BEFORE_KINDS]:
        for statement in statements(step):
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SQLITE_BEFORE_KINDS}")
    for statement in OLD_ROWS:
        conn.execute(statement)
    conn.close()
    blobs = FileBlobs(data_dir / "blobs", fsync=False)
    asyncio.run(_check(SqliteEngine(data_dir, blobs, inline_max=1024, max_record_bytes=1 << 20)))
    version = sqlite3.connect(data_dir / "satchel.db").execute("PRAGMA user_version").fetchone()[0]
    assert version == len(SQLITE_STEPS)


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield server
    finally:
        stop_postgres(server)


def test_a_postgres_database_from_before_kinds_keeps_its_stores(pg: Postgres, tmp_path: Path) -> None:
    dsn = pg.create_database("before_kinds")

    async def old_schema() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "CREATE TABLE schema_version (version int PRIMARY KEY, applied_at bigint NOT NULL)"
            )
            for number, step in enumerate(PG_STEPS[:PG_BEFORE_KINDS], start=1):
                await conn.execute(step)
                await conn.execute("INSERT INTO schema_version VALUES ($1, 0)", number)
            await conn.execute(OLD_ROWS[0])
            await conn.execute(OLD_ROWS[1].replace(") VALUES", ") OVERRIDING SYSTEM VALUE VALUES"))
            for statement in OLD_ROWS[2:]:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(old_schema())
    settings = PostgresSettings(pool_min=1, pool_max=4, timeout_seconds=5)
    engine = PostgresEngine(
        dsn, settings, FileBlobs(tmp_path / "blobs", fsync=False), inline_max=1024, max_record_bytes=1 << 20
    )
    asyncio.run(_check(engine))
