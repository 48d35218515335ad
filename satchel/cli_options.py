"""What every command that touches stored data shares: where the data lives, and one run of work on it."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from satchel.errors import SatchelError
from satchel.logs import quiet_libraries
from satchel.service.services import Services, build_services_from
from satchel.settings import ConfigFileError, Settings, load
from satchel.storage import pairing
from satchel.storage.blobs.base import MARK_NAME

T = TypeVar("T")
SQLITE_FILE = "satchel.db"  # what makes a folder a data dir of the embedded engine

DATA_DIR = click.option(
    "--data-dir", type=click.Path(path_type=Path), default=None, help="Where data lives (./satchel-data)."
)
DATABASE = click.option(
    "--database",
    default=None,
    help="postgresql://USER@HOST:PORT/DB for PostgreSQL (default: SQLite in the data dir).",
)
BLOB_STORE = click.option(
    "--blob-store",
    default=None,
    help="s3://BUCKET?endpoint=URL[&region=R] for an S3 object store (default: files in the data dir).",
)


def storage_options(command: Callable[..., T]) -> Callable[..., T]:
    """The options that say where the data lives, shared by every command that touches it."""
    return DATA_DIR(DATABASE(BLOB_STORE(command)))


def say_list(heading: str, lines: list[str], *, shown: int | None = None) -> None:
    """A heading and its lines, indented, on stderr: the first `shown` of them (all: None), then how many
    more there are."""
    click.echo(heading, err=True)
    for line in lines[:shown]:
        click.echo(f"  {line}", err=True)
    if shown is not None and len(lines) > shown:
        click.echo(f"  and {len(lines) - shown:,} more", err=True)


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment, with the command line's explicit options on top; a value Satchel
    cannot use, or a config file it cannot read, is a clean error naming the setting."""
    try:
        return load(**overrides)
    except ConfigFileError as error:
        raise click.ClickException(str(error)) from error


def run_on_storage(
    where: dict[str, Any],
    work: Callable[[Services], Awaitable[T]],
    *,
    bodies: bool = True,
    writes: bool = True,
) -> T:
    """Run one piece of work against the storage the options name, turning Satchel's errors into a clean
    exit. The data dir must be there, unless nothing the work touches lives in it.

    `bodies=False` is for work on users, tokens, grants and stores that never reads or writes a record's
    body: on PostgreSQL with file bodies, the data dir then holds nothing it needs, so an operator may run it
    from anywhere; without a data dir, the file store's scratch folder goes in a temporary one. Work on bodies
    is refused a blob store that is not the database's (check_pairing), and `writes=False` (work that only
    reads them) leaves the two unpaired if they were.
    """
    settings = settings_from(**where)
    if not settings.database or (bodies and not settings.blob_store):
        _check_data_dir(settings)
    elif not settings.blob_store and not settings.data_dir.is_dir():
        with tempfile.TemporaryDirectory(prefix="satchel-") as scratch:
            return _run(settings.model_copy(update={"data_dir": Path(scratch)}), work)
    return _run(settings, work, bodies=bodies, writes=writes)


def _run(
    settings: Settings,
    work: Callable[[Services], Awaitable[T]],
    *,
    bodies: bool = False,
    writes: bool = False,
) -> T:
    quiet_libraries()

    async def go() -> T:
        try:
            services = build_services_from(settings, housekeeping=False)
        except ValueError as error:  # a --database or --blob-store Satchel cannot use
            raise click.ClickException(str(error)) from error
        await services.start(background=False)
        try:
            if bodies:
                await check_pairing(settings, services, pair=writes)
            return await work(services)
        finally:
            await services.stop()

    try:
        return asyncio.run(go())
    except SatchelError as error:
        raise click.ClickException(error.message) from error


async def check_pairing(settings: Settings, services: Services, *, pair: bool = True) -> None:
    """Refuse to move bodies through a blob store that is not the database's (storage/pairing.py): they
    would be written where no server reads them, and read back as missing. `pair`: a node's start and the
    commands that write pair a database and a blob store that neither hold a mark yet; `pair=False` for
    those that only read.

    Only where the settings pair the two (a database or a blob store named): the embedded engine keeps both
    in its data dir, where no setting can give it another blob folder, so its start reads nothing more."""
    if not (settings.database or settings.blob_store):
        return
    try:
        await pairing.check(
            services.storage.records, services.storage.blobs, described_blob_store(settings), pair=pair
        )
    except pairing.Unpaired as error:
        await services.storage.blobs.forget_made()  # a misspelt bucket is not left behind, empty
        raise click.ClickException(error.message) from error


def described_blob_store(settings: Settings) -> pairing.Described:
    """How messages name the blob store the settings give, and its mark (the refusals, `migrate`)."""
    if not settings.blob_store:
        folder = settings.data_dir.resolve() / "blobs"
        return pairing.Described(f"the data dir's blob folder ({folder})", f"the file {MARK_NAME}")
    under = f" under the prefix {settings.s3.prefix}" if settings.s3.prefix else ""
    return pairing.Described(
        f"the blob store {settings.blob_store}{under}", f"the object {settings.s3.prefix}{MARK_NAME}"
    )


def _check_data_dir(settings: Settings) -> None:
    """Refuse a data dir that is not there: run from another folder, the default ./satchel-data would
    otherwise be made anew, empty, and the command would act on it instead of on the server's data."""
    data_dir = settings.data_dir.resolve()
    if settings.database:
        present, why = data_dir.is_dir(), "there is no such folder"
    else:
        present, why = (data_dir / SQLITE_FILE).is_file(), f"it holds no {SQLITE_FILE}"
    if not present and settings.database and not settings.blob_store:
        # Only work on bodies gets here: with a database, the data dir holds nothing else a command needs. An
        # environment file that lacks SATCHEL_BLOB_STORE looks the same, so both ways out are named.
        raise click.ClickException(
            f"No data dir at {data_dir}: {why}. With a --database and no --blob-store, large record bodies"
            " are files in the data dir: point at the servers' with --data-dir PATH or SATCHEL_DATA_DIR, or,"
            " if they keep them in a bucket, give the --blob-store (or SATCHEL_BLOB_STORE) they use."
        )
    if not present:
        raise click.ClickException(
            f"No data dir at {data_dir}: {why}. Point at the server's with --data-dir PATH or"
            " SATCHEL_DATA_DIR (`satchel serve` creates a new one)."
        )
