"""`satchel transfer`: the embedded engine's data dir copied whole into PostgreSQL and a blob store, the step
from one machine to scale-out (storage/transfer.py does the copying)."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from satchel.cli_options import BLOB_STORE, DATA_DIR, SQLITE_FILE, say_list, settings_from
from satchel.clock import now_ms
from satchel.errors import SatchelError
from satchel.local_server import running_url
from satchel.logs import quiet_libraries
from satchel.service.users import TOKEN_FILE
from satchel.settings import Settings
from satchel.storage.blobs.base import BlobStore
from satchel.storage.factory import build_blobs, build_engine
from satchel.storage.pairing import blobs_found
from satchel.storage.postgres.db import Database
from satchel.storage.transfer import Report, counted, transfer
from satchel.urls import check_blob_store, check_database, redacted, without_password

SHOWN_MISSING = 20
# The tables counted in what the command says, and what their rows are.
SHOWN_TABLES = (
    ("users", "user"),
    ("stores", "storage"),  # key-value stores, datasets and request queues
    ("records", "record"),
    ("dataset_items", "dataset item"),
    ("requests", "request"),
    ("runs", "run"),
)  # records left out for a missing body, named one by one


def _url(check: Callable[[str], str]) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    def validate(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        try:
            return check(value) if value else value
        except ValueError as error:
            raise click.BadParameter(f"{error} (got {redacted(value or '')!r})", param=param) from error

    return validate


def _named_database(url: str) -> str:
    """A PostgreSQL URL that names its database: without one, the copy would go into the user's default
    (often the `postgres` maintenance database)."""
    check_database(url)
    if not urlsplit(url).path.strip("/"):
        raise ValueError("it names no database: give postgresql://USER@HOST:PORT/DB")
    return url


@click.command("transfer")
@DATA_DIR
@BLOB_STORE
@click.option(
    "--to-database",
    required=True,
    callback=_url(_named_database),
    help="The empty PostgreSQL database to copy into: postgresql://USER@HOST:PORT/DB.",
)
@click.option(
    "--to-blob-store",
    default=None,
    callback=_url(check_blob_store),
    help="s3://BUCKET?endpoint=URL[&region=R] for the large bodies (default: where they are now).",
)
@click.option(
    "--to-data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="For bodies in files: the data dir whose files keep them (default: where they are now).",
)
def transfer_command(
    to_database: str, to_blob_store: str | None, to_data_dir: Path | None, **where: Any
) -> None:
    """Copy everything this data dir holds (users and tokens, key-value stores with their records, datasets,
    request queues, runs) into an empty PostgreSQL database and a blob store, to serve it from any number of
    nodes. Stop `satchel serve` first. The data dir is left as it was."""
    source = settings_from(**where)
    if source.database:
        raise click.ClickException(
            "The data to copy must be the embedded engine's, but the database here is"
            f" {redacted(source.database)} (from SATCHEL_DATABASE or the config file): unset it, and give the"
            " new database as --to-database."
        )
    if not (source.data_dir / SQLITE_FILE).is_file():
        backup = (
            " (a backup? `satchel restore` it into a data dir first)" if source.data_dir.is_file() else ""
        )
        raise click.ClickException(
            f"No data dir at {source.data_dir.resolve()}: it holds no {SQLITE_FILE}{backup}. Point at the"
            " server's with --data-dir PATH."
        )
    if served := running_url(source):
        raise click.ClickException(
            f"A server runs on this data dir ({served}): stop it first, or writes made during the copy would"
            " be left behind."
        )
    if to_blob_store and to_data_dir:
        raise click.UsageError("Give --to-blob-store or --to-data-dir, not both.")
    # Without either, the bodies stay where they are: the source's bucket, or its data dir's files.
    blob_store = to_blob_store or ("" if to_data_dir else source.blob_store)
    target = settings_from(
        data_dir=to_data_dir or source.data_dir, database=to_database, blob_store=blob_store
    )
    if blob_store:
        in_place = blob_store == source.blob_store
    else:
        in_place = not source.blob_store and target.data_dir.resolve() == source.data_dir.resolve()
    quiet_libraries()
    try:
        report = asyncio.run(_transfer(source, target, in_place=in_place))
    except SatchelError as error:
        raise click.ClickException(error.message) from error
    _say(report, source, target)


async def _transfer(source: Settings, target: Settings, *, in_place: bool) -> Report:
    source_blobs = _blobs(source, "--blob-store")
    engine, _ = build_engine(source, source_blobs, serving=False)
    await source_blobs.open()
    try:
        await engine.open()  # brings the file's schema to this Satchel's, as every command does
        try:
            checked, found = await blobs_found(engine.records, source_blobs)
        finally:
            await engine.close()
        if checked and not found:
            raise SatchelError(
                f"None of the {checked} large record bodies checked is in this data dir's blob store: give"
                " the --blob-store (or SATCHEL_BLOB_STORE) its server uses."
            )
        target_blobs = None if in_place else _blobs(target, "--to-blob-store")
        database = Database(target.database, target.postgres)
        await database.open()
        try:
            if target_blobs is not None:
                try:
                    await target_blobs.open()
                except OSError as error:  # a --to-data-dir under a file, or not ours to write
                    raise SatchelError(f"The large bodies cannot go in {target.data_dir}: {error}") from error
            try:
                return await transfer(
                    source.data_dir / SQLITE_FILE,
                    source_blobs,
                    database,
                    target_blobs,
                    now=now_ms(),
                    progress=lambda line: click.echo(f"  {line}", err=True),
                )
            finally:
                if target_blobs is not None:
                    await target_blobs.close()
        finally:
            await database.close()
    finally:
        await source_blobs.close()


def _blobs(settings: Settings, option: str) -> BlobStore:
    try:
        return build_blobs(settings)
    except ValueError as error:  # a bucket name S3 does not take, say
        raise SatchelError(f"{option}: {error}") from error


def _say(report: Report, source: Settings, target: Settings) -> None:
    rows = sum(report.copied.values())
    where = target.blob_store or f"files under {target.data_dir.resolve() / 'blobs'}"
    counts = ", ".join(counted(report.copied[table], what) for table, what in SHOWN_TABLES)
    bodies = counted(report.blobs, "large body", "large bodies")
    if report.in_place:
        bodies = f"{bodies}, left where {'it is' if report.blobs == 1 else 'they are'}, in {where}"
    else:
        bodies = f"{bodies} ({report.blob_bytes:,} bytes) to {where}"
    click.echo(f"Copied {counted(rows, 'row')} ({counts}) into {redacted(target.database)}, and {bodies}.")
    for table, count in report.left_out.items():
        why = "expired" if table == "sessions" else "whose owner is gone"
        click.echo(f"Left out: {counted(count, table + ' row')} {why}.")
    if report.missing:
        say_list(
            f"Left out: {counted(len(report.missing), 'record')} whose body is missing from this data dir's"
            " blob store:",
            [f"store {store}, key {key!r}" for store, key in report.missing],
            shown=SHOWN_MISSING,
        )
    # As the user gave the URLs (a password masked), quoted: a line to paste into a shell.
    serve = ["satchel", "serve", "--database", without_password(target.database)]
    serve += (
        ["--blob-store", target.blob_store] if target.blob_store else ["--data-dir", str(target.data_dir)]
    )
    click.echo(f"Next: start the nodes with `{shlex.join(serve)}`.")
    if (source.data_dir / TOKEN_FILE).is_file():
        click.echo(
            f"Every token works there as here. To keep the admin's, give the nodes SATCHEL_TOKEN from"
            f" {source.data_dir / TOKEN_FILE}; without it, each node's first start makes a new one."
        )
