"""What every command that touches stored data shares: where the data lives, and one run of work on it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from satchel.errors import SatchelError
from satchel.server import build_services_from
from satchel.service import Services
from satchel.settings import Settings

T = TypeVar("T")

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


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment, with the command line's explicit options on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def run_on_storage(where: dict[str, Any], work: Callable[[Services], Awaitable[T]]) -> T:
    """Run one piece of work against the storage the options name, turning Satchel's errors into a clean
    exit."""
    settings = settings_from(**where)

    async def go() -> T:
        try:
            services = build_services_from(settings, housekeeping=False)
        except ValueError as error:  # a --database or --blob-store Satchel cannot use
            raise click.ClickException(str(error)) from error
        await services.start(background=False)
        try:
            return await work(services)
        finally:
            await services.stop()

    try:
        return asyncio.run(go())
    except SatchelError as error:
        raise click.ClickException(error.message) from error
