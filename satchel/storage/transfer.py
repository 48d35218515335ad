"""A whole embedded deployment copied into PostgreSQL and a blob store: how a Satchel that outgrew one
machine moves to scale-out without losing a store, a token or a run.

The two schemas keep the same tables and columns (each engine's migrations.py), so a table is copied by its
PostgreSQL columns, read by name from SQLite in one read transaction (a consistent snapshot), in batches
through COPY. Large bodies are copied first, under their own names; then every table in one PostgreSQL
transaction, so the target holds all of it or nothing. What the copy wrote to the blob store before a failure
is removed again.

Left out on purpose: bodies already replaced or deleted (dead_blobs) and uploads in flight (blob_uploads),
which no record names, unless the bodies stay where they are (then their ledger goes too, so that the target
deletes them in time); expired Console sessions; and rows whose owner is gone (SQLite does not enforce the
foreign keys PostgreSQL does), counted in the report. A record whose large body is missing from the source's
blob store cannot be copied whole and is left out too, by key.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from satchel.errors import SatchelError
from satchel.storage.blobs.base import BlobMissing, BlobStore
from satchel.storage.pairing import holds
from satchel.storage.postgres.db import Connection, Database, address, is_down
from satchel.storage.postgres.migrations import migrate_connection

BATCH_ROWS = 2000
BATCH_BYTES = 8 * 2**20  # a batch of large dataset items is sent before it holds more than this
COPY_TIMEOUT_SECONDS = 600.0  # one batch's COPY; the pool's own timeout is for requests
PROGRESS_SECONDS = 2.0  # how often a long copy says how far it is
BLOBS_AT_ONCE = 8  # bodies in flight to an object store, whose each round trip is slow

# The tables in the order their foreign keys need, each with the rows of it that are copied: those whose
# owner is copied too (and, for sessions, not expired; `:now` is the copy's time).
TABLES: tuple[tuple[str, str], ...] = (
    ("users", ""),
    ("tokens", "user_id IN (SELECT id FROM users)"),
    ("sessions", "token_hash IN (SELECT hash FROM tokens) AND expires_at > :now"),
    ("stores", "user_id IN (SELECT id FROM users)"),
    ("grants", "store_pk IN (SELECT pk FROM stores) AND user_id IN (SELECT id FROM users)"),
    ("records", "store_pk IN (SELECT pk FROM stores)"),
    ("datasets", "store_pk IN (SELECT pk FROM stores)"),
    ("dataset_items", "store_pk IN (SELECT store_pk FROM datasets)"),
    ("request_queues", "store_pk IN (SELECT pk FROM stores)"),
    ("requests", "store_pk IN (SELECT store_pk FROM request_queues)"),
    ("actors", "user_id IN (SELECT id FROM users)"),
    ("runs", "act_id IN (SELECT id FROM actors) AND user_id IN (SELECT id FROM users)"),
    ("run_charges", "run_id IN (SELECT id FROM runs)"),
    ("run_log", "run_id IN (SELECT id FROM runs)"),
)
# With the bodies left in place, the blobs no record names stay there too: their ledger goes with them, so
# the target's housekeeping deletes them as the source's would have.
LEDGER: tuple[tuple[str, str], ...] = (("dead_blobs", ""), ("blob_uploads", ""))
# And so does the blob store's deployment mark (storage/pairing.py), if the source has one: the pair stays the
# same. Bodies copied to another blob store make a new pair, marked by the first node to start on it.
PAIRING: tuple[tuple[str, str], ...] = (("deployment", ""),)
RECORDS_WITH_BLOBS = (
    "SELECT DISTINCT blob FROM records WHERE blob IS NOT NULL AND store_pk IN (SELECT pk FROM stores)"
)


class Progress:
    """What the copy has done so far, said at most every PROGRESS_SECONDS, and whenever `at_once` asks."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self._said_at = time.monotonic()

    def __call__(self, line: str, *, at_once: bool = False) -> None:
        now = time.monotonic()
        if at_once or now - self._said_at >= PROGRESS_SECONDS:
            self._said_at = now
            self.say(line)


@dataclass
class Report:
    copied: dict[str, int] = field(default_factory=dict)  # table: rows
    left_out: dict[str, int] = field(default_factory=dict)  # table: rows whose owner is gone, or expired
    blobs: int = 0
    blob_bytes: int = 0
    in_place: bool = False  # the bodies were where the target reads them, and were only checked
    missing: list[tuple[str, str]] = field(default_factory=list)  # (store id, key) of bodies not found


async def transfer(
    sqlite_file: Path,
    source_blobs: BlobStore,
    target: Database,
    target_blobs: BlobStore | None,
    *,
    now: int,
    progress: Callable[[str], None],
) -> Report:
    """Copy everything in `sqlite_file` (and the large bodies in `source_blobs`) into the empty database
    `target` (and `target_blobs`; None when the bodies are where the target's nodes will read them already).
    """
    report = Report()
    async with target.connection() as conn:
        await migrate_connection(conn)
        await _check_empty(conn, target)
    with contextlib.closing(_read_only(sqlite_file)) as source:
        source.execute("BEGIN")  # one snapshot for the whole copy
        written: set[str] = set()
        try:
            report.in_place = target_blobs is None
            await _bodies(source, source_blobs, target_blobs, report, written=written, progress=progress)
            async with target.connection() as conn, conn.transaction():
                told = Progress(progress)
                for table, which in TABLES + (LEDGER + PAIRING if report.in_place else ()):
                    await _copy_table(conn, source, table, which, now=now, report=report, told=told)
                    told(f"{table}: {counted(report.copied[table], 'row')}", at_once=True)
                await conn.execute(
                    "SELECT setval(pg_get_serial_sequence('stores', 'pk'), max(pk)) FROM stores"
                    " HAVING max(pk) IS NOT NULL"
                )
        except BaseException as error:
            removed = await _remove(target_blobs, written)
            if isinstance(error, SatchelError | asyncio.CancelledError):
                raise _nothing_copied(error, len(written), removed=removed) from error
            raise
    return report


async def _remove(blobs: BlobStore | None, written: set[str]) -> bool:
    """Delete the bodies this copy wrote (only those: a body the blob store held before stays); whether
    none is left."""
    if blobs is None or not written:
        return True
    try:
        await blobs.delete(sorted(written))
    except Exception:  # the blob store does not answer either: the message says what stays
        return False
    return True


def _nothing_copied(error: BaseException, written: int, *, removed: bool) -> SatchelError:
    """The error said whole: a Ctrl-C (the copy's task cancelled) or what failed, then what was undone."""
    said = error.message if isinstance(error, SatchelError) else "Interrupted"
    if removed:
        bodies = "no large body it had copied is left in the blob store"
    else:
        bodies = f"up to {written:,} large bodies it had copied stay in the blob store, named by no record"
    return SatchelError(f"{said.rstrip('.')}. Nothing was copied: the database is as it was, and {bodies}.")


def _read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


async def _check_empty(conn: Connection, target: Database) -> None:
    held = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM stores) AS stores"
    )
    assert held is not None
    if held["users"] or held["stores"]:
        raise SatchelError(
            f"The database at {address(target.dsn)} already holds data ({held['users']} users,"
            f" {held['stores']} stores). Copy into a new, empty database (createdb), and start no node on it"
            " before the copy is done."
        )


async def _bodies(
    source: sqlite3.Connection,
    source_blobs: BlobStore,
    target_blobs: BlobStore | None,
    report: Report,
    *,
    written: set[str],
    progress: Callable[[str], None],
) -> None:
    """Copy every large body a record names into `target_blobs`, or (None: they stay where they are) check
    that `source_blobs` has it; BLOBS_AT_ONCE at a time, as an object store's round trips are slow."""
    names = [row[0] for row in source.execute(RECORDS_WITH_BLOBS)]
    queue = iter(names)
    missing: set[str] = set()
    told = Progress(progress)
    doing = "checked" if target_blobs is None else "copied"
    if names:
        told(f"large bodies: {len(names):,} to be {doing}", at_once=True)

    async def one(name: str) -> None:
        if target_blobs is None:
            if not await holds(source_blobs, name):
                missing.add(name)
                return
        # A body the target holds already (the same store under another URL, or a copy cut short before)
        # is not written again, nor ever deleted by this copy.
        elif not await holds(target_blobs, name):
            written.add(name)  # before the write: one cut short is deleted too
            try:
                report.blob_bytes += await _uninterrupted(target_blobs.put(name, source_blobs.read(name)))
            except BlobMissing:
                written.discard(name)
                missing.add(name)
                return
        report.blobs += 1
        told(f"large bodies {doing}: {report.blobs:,} of {len(names):,}")

    async def worker() -> None:
        for name in queue:  # shared by the workers: each name is taken once
            await one(name)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(BLOBS_AT_ONCE):
                group.create_task(worker())
    except* SatchelError as failed:  # the blob store's failure, said as the first worker met it
        raise failed.exceptions[0] from None
    except* OSError as failed:  # files that cannot be written (permissions, say)
        raise SatchelError(f"The large bodies could not be written: {failed.exceptions[0]}") from None
    _note_missing(source, missing, report)


async def _uninterrupted(write: Coroutine[Any, Any, int]) -> int:
    """A write that a cancel (Ctrl-C) lets end before it goes on: an upload in flight may finish after its
    caller has gone (in a thread, or in the object store client's own runtime), and would then land after
    the copy's clean-up had deleted what it wrote."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


def _note_missing(source: sqlite3.Connection, missing: set[str], report: Report) -> None:
    source.execute("CREATE TEMP TABLE missing_blobs (name TEXT PRIMARY KEY)")
    source.executemany("INSERT INTO missing_blobs VALUES (?)", [(name,) for name in missing])
    report.missing = [
        (row[0], row[1])
        for row in source.execute(
            "SELECT stores.id, records.key FROM records JOIN stores ON stores.pk = records.store_pk"
            " WHERE records.blob IN (SELECT name FROM missing_blobs) ORDER BY 1, 2"
        )
    ]


async def _copy_table(
    conn: Connection,
    source: sqlite3.Connection,
    table: str,
    which: str,
    *,
    now: int,
    report: Report,
    told: Progress,
) -> None:
    types = {
        row["column_name"]: row["data_type"]
        for row in await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            table,
        )
    }
    columns = list(types)
    where = which or "1"
    if table == "records":
        where += " AND (blob IS NULL OR blob NOT IN (SELECT name FROM missing_blobs))"
    listed = ", ".join(f'"{name}"' for name in columns)
    rows = source.execute(f"SELECT {listed} FROM {table} WHERE {where}", {"now": now})  # noqa: S608 - our names
    convert = _converters([types[name] for name in columns])
    copied = 0
    for batch in _batches(rows):
        try:
            await conn.copy_records_to_table(
                table,
                records=[tuple(f(value) for f, value in zip(convert, row, strict=True)) for row in batch],
                columns=columns,
                timeout=COPY_TIMEOUT_SECONDS,
            )
        except asyncpg.PostgresError as exc:
            if is_down(exc):
                raise
            # A row SQLite holds that PostgreSQL does not take (a NUL character in a text, say).
            raise SatchelError(f"PostgreSQL refused a row of {table}: {' '.join(str(exc).split())}") from exc
        copied += len(batch)
        told(f"{table}: {counted(copied, 'row')} so far")
    total = source.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - our names
    report.copied[table] = copied
    # Records left out for a missing body are said by key (report.missing), not as rows without an owner.
    ownerless = total - copied - (len(report.missing) if table == "records" else 0)
    if ownerless > 0:
        report.left_out[table] = ownerless


def counted(number: int, one: str, many: str = "") -> str:
    """A number of things as the copy says it: "1 row", "2,500 rows" (`many`: a plural other than one + s)."""
    return f"{number:,} {one if number == 1 else many or one + 's'}"


def _batches(rows: sqlite3.Cursor) -> Iterator[list[sqlite3.Row]]:
    batch: list[sqlite3.Row] = []
    size = 0
    for row in rows:
        batch.append(row)
        size += sum(len(value) for value in row if isinstance(value, bytes | str))
        if len(batch) >= BATCH_ROWS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _converters(types: list[str]) -> list[Callable[[Any], Any]]:
    """What SQLite keeps, as PostgreSQL's columns take it: its 0 and 1 as booleans, text as bytes."""
    made: list[Callable[[Any], Any]] = []
    for kind in types:
        if kind == "boolean":
            made.append(lambda value: value if value is None else bool(value))
        elif kind == "bytea":
            made.append(lambda value: value.encode() if isinstance(value, str) else value)
        else:
            made.append(lambda value: value)
    return made
