"""The backends of B9 (bench/scaleout.py): a PostgreSQL cluster and SeaweedFS, started for one run, and
the stores seeded into them and into the embedded engine.

Both come from the test suite's harnesses (tests/harness/postgres.py, tests/harness/seaweed.py), so the bench
runs the engines on what the tests run them on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import asyncpg

from bench import seed, servers
from bench.figures import MIB, Figure, Plan, body_1k, keys, mixed_body
from satchel.clock import now_ms

SCALE, EMBEDDED = "postgres+s3", "sqlite+files"
BUCKET = "satchel-bench"
COPY_BATCH = 50_000
COLUMNS = ("store_pk", "key", "content_type", "content_encoding", "size", "raw_size", "modified_at", "blob")


def missing_backends() -> str:
    """Why PostgreSQL or SeaweedFS cannot run here; empty when both can."""
    try:
        from tests.harness.postgres import BIN_DIRS, USER
        from tests.harness.seaweed import weed_binary
    except ImportError as exc:
        return f"the test harness of the backends cannot be imported ({exc})"
    if not shutil.which("initdb") and not any((d / "initdb").exists() for d in BIN_DIRS):
        return "PostgreSQL is not installed (initdb not found)"
    if os.geteuid() != 0:
        return f"the PostgreSQL cluster runs as the {USER} user, which takes root to start"
    try:
        pwd.getpwnam(USER)
        weed_binary()
    except (KeyError, RuntimeError) as exc:
        return f"missing: {exc}"
    return ""


@dataclass
class Backends:
    dsn: str
    blob_store: str
    node_env: dict[str, str]  # what a `satchel serve` needs to be a postgres+s3 node
    version: str = "?"


@contextlib.contextmanager
def backends(plan: Plan) -> Iterator[Backends]:
    from tests.harness.postgres import start_postgres, stop_postgres
    from tests.harness.seaweed import start_seaweed, stop_seaweed

    with contextlib.ExitStack() as stack:
        pg_root, weed_dir = plan.work / "b9-postgres", plan.work / "b9-seaweedfs"
        shutil.rmtree(pg_root, ignore_errors=True)
        shutil.rmtree(weed_dir, ignore_errors=True)
        pg = start_postgres(pg_root)
        stack.callback(stop_postgres, pg)
        weed = start_seaweed(weed_dir)
        stack.callback(stop_seaweed, weed)
        # The in-process seeding reads the S3 credentials from this process's environment, as a node does.
        saved = {name: os.environ.get(name) for name in weed.env()}
        stack.callback(_restore_env, saved)
        os.environ.update(weed.env())
        dsn, blob_store = pg.create_database("satchel"), weed.blob_store_url(BUCKET)
        env = {"SATCHEL_DATABASE": dsn, "SATCHEL_BLOB_STORE": blob_store, **weed.env()}
        yield Backends(dsn, blob_store, env)


def _restore_env(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# --- seeding: one record through Satchel, the rest COPYed into its table with that record's columns


async def _copy_rest(dsn: str, store_id: str, names: Sequence[str], body: Callable[[int], bytes]) -> None:
    """names[0] was written by Satchel; COPY names[1:] in the engine's schema and fix the store's stats."""
    conn = await asyncpg.connect(dsn)
    try:
        first = await conn.fetchrow(
            "SELECT r.* FROM records r JOIN stores s ON s.pk = r.store_pk WHERE s.id = $1 AND r.key = $2",
            store_id,
            names[0],
        )
        assert first is not None, "the first record is written by Satchel"
        assert first["blob"] is None, "the seeded records must be inline"
        pk, size, now = first["store_pk"], first["size"], now_ms()
        head = (first["content_type"], first["content_encoding"], size, first["raw_size"], now, None)
        for start in range(1, len(names), COPY_BATCH):
            rows = []
            for i, name in enumerate(names[start : start + COPY_BATCH], start=start):
                data = body(i)
                assert len(data) == size, "every seeded body has the first one's size"
                rows.append((pk, name, *head, data))
            await conn.copy_records_to_table("records", columns=[*COLUMNS, "body"], records=rows)
        added = len(names) - 1
        await conn.execute(
            "UPDATE stores SET storage_bytes = storage_bytes + $2, write_count = write_count + $3,"
            " modified_at = $4 WHERE pk = $1",
            pk,
            added * size,
            added,
            now,
        )
    finally:
        await conn.close()


async def _settle(dsn: str) -> str:
    """VACUUM ANALYZE after the bulk load (planner statistics, hint bits); returns the server's version."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM (ANALYZE) records")
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


@dataclass
class Stores:
    small: dict[str, str]  # engine -> id of the store of plan.keys records of 1 KiB
    large: dict[str, str]  # engine -> id of the store of plan.large_records records of 1 MiB
    list_1k: str  # postgres+s3 only: 1000 keys, and list_groups x 1000 keys
    list_big: str
    mixed: dict[str, str]  # engine -> id of the store of plan.mixed_keys records of 1-100 KiB (B6's)


def seed_stores(plan: Plan, back: Backends, fig: Figure) -> Stores:
    token, work = servers.TOKEN, plan.work
    shutil.rmtree(work / "b9-sqlite", ignore_errors=True)
    shutil.rmtree(work / "b9-seed", ignore_errors=True)
    names, large = keys(plan.keys), [f"m{i:03d}" for i in range(plan.large_records)]

    def big_body(_: int) -> bytes:
        return os.urandom(MIB)

    def small_body(_: int) -> bytes:
        return b"v" * 16

    began = time.perf_counter()
    lite_small, _ = seed.satchel_store(work / "b9-sqlite", token, "b9", names, body_1k)
    lite_large, _ = seed.satchel_store(work / "b9-sqlite", token, "b9-large", large, big_body)
    mixed = keys(plan.mixed_keys)
    lite_mixed, _ = seed.satchel_store(work / "b9-sqlite", token, "b9-mixed", mixed, mixed_body)
    took_lite = time.perf_counter() - began

    began = time.perf_counter()
    seeded = work / "b9-seed"

    def scale_store(name: str, names: list[str], body: Callable[[int], bytes]) -> str:
        store_id, _ = seed.satchel_store(
            seeded, token, name, names, body, database=back.dsn, blob_store=back.blob_store
        )
        return store_id

    pg_large = scale_store("b9-large", large, big_body)
    pg_mixed = scale_store("b9-mixed", mixed, mixed_body)
    list_small = [f"g000-{i:04d}" for i in range(1000)]
    list_big = [f"g{g:03d}-{i:04d}" for g in range(plan.list_groups) for i in range(1000)]
    ids: dict[str, str] = {}
    inline: list[tuple[str, list[str], Callable[[int], bytes]]] = [
        ("b9", names, body_1k),
        ("keys-1k", list_small, small_body),
        ("keys-big", list_big, small_body),
    ]
    for name, found, body in inline:
        ids[name] = scale_store(name, found[:1], body)
        asyncio.run(_copy_rest(back.dsn, ids[name], found, body))
    back.version = asyncio.run(_settle(back.dsn))
    took_pg = time.perf_counter() - began
    fig.notes.append(
        f"Seeded in {took_lite:.0f} s ({EMBEDDED}: {plan.keys:,} records of 1 KiB, {plan.large_records}"
        f" of 1 MiB and {plan.mixed_keys:,} of 1-100 KiB as in B6, in-process through the service layer) and"
        f" {took_pg:.0f} s ({SCALE}: the 1 MiB records through the service layer, into S3, and the"
        f" {plan.mixed_keys:,} of 1-100 KiB likewise, inline in PostgreSQL; of each store of equal small"
        " bodies the first record through the service layer and the rest COPYed into PostgreSQL's"
        " `records` table with that record's columns, the store's stats updated to match, then VACUUM"
        f" ANALYZE; listing stores of 1,000 and {len(list_big):,} keys"
        " named gNNN-NNNN, as in B3)."
    )
    return Stores(
        {EMBEDDED: lite_small, SCALE: ids["b9"]},
        {EMBEDDED: lite_large, SCALE: pg_large},
        ids["keys-1k"],
        ids["keys-big"],
        {EMBEDDED: lite_mixed, SCALE: pg_mixed},
    )
