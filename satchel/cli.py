"""The `satchel` command: run the server, and manage users, tokens and sharing on its data dir."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from granian import Granian
from granian.constants import Interfaces

from satchel import crawlee_storage
from satchel.clock import iso
from satchel.errors import SatchelError
from satchel.service import Services, build_services
from satchel.service.access import USER_GENERAL_ACCESS, Caller
from satchel.service.users import TOKEN_FILE, Users, token_id
from satchel.service.validation import split_reference
from satchel.settings import Settings
from satchel.storage.factory import build_engine

T = TypeVar("T")
DATA_DIR = click.option(
    "--data-dir", type=click.Path(path_type=Path), default=None, help="Where data lives (./satchel-data)."
)


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the command line's explicit options on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


async def _bootstrap(settings: Settings) -> tuple[str, bool]:
    engine = build_engine(settings)
    await engine.open()
    try:
        _, token, created = await Users(engine).ensure_admin(
            settings.admin_username, settings.data_dir, settings.token
        )
    finally:
        await engine.close()
    return token, created


@click.group()
@click.version_option(package_name="satchel")
def main() -> None:
    """Satchel: a self-hosted key-value store speaking the Apify API v2."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8765).")
@DATA_DIR
@click.option("--workers", type=int, default=None, help="Server processes (default 1).")
@click.option(
    "--public-url", default=None, help="Base URL clients reach the server at, if not http://host:port."
)
@click.option(
    "--rate-limit",
    type=click.Choice(["on", "off"]),
    default=None,
    help="Enforce the API's rate limits (default on; off for benchmarks).",
)
def serve(  # noqa: PLR0917 - click passes options positionally
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    workers: int | None,
    public_url: str | None,
    rate_limit: str | None,
) -> None:
    """Run the API server on the embedded engine (SQLite and local files); no configuration needed."""
    settings = _settings(
        host=host,
        port=port,
        data_dir=data_dir,
        workers=workers,
        public_url=public_url,
        rate_limit=None if rate_limit is None else rate_limit == "on",
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    token, created = asyncio.run(_bootstrap(settings))
    click.echo(f"Satchel API: {settings.base_url}/v2")
    click.echo(f"Console:     {settings.base_url}/console")
    click.echo(f"Data dir:    {settings.data_dir}")
    if created:
        click.echo(f"Admin token: {token}   (shown once; also kept in {settings.data_dir / TOKEN_FILE})")
    else:
        click.echo(f"Admin token: in {settings.data_dir / TOKEN_FILE}")
    # Workers are separate processes and read their settings from the environment.
    for name, value in settings.model_dump().items():
        if value is not None:
            os.environ[f"SATCHEL_{name.upper()}"] = str(value)
    run_granian("satchel.api.app:create_app", settings, factory=True)


def run_granian(target: str, settings: Settings, *, factory: bool = False) -> None:
    """Serve an ASGI app as Satchel is served; the benchmarks run their reference apps through it too."""
    Granian(
        target,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        factory=factory,
        log_level=settings.log_level,  # type: ignore[arg-type]
        backlog=2048,
    ).serve()


# --- managing the data dir; safe while a server runs on it (its caches follow every change)


def _run(data_dir: Path | None, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run one piece of work against the data dir's engine, turning Satchel's errors into a clean exit."""
    settings = _settings(data_dir=data_dir)

    async def go() -> T:
        engine = build_engine(settings)
        await engine.open()
        try:
            return await work(build_services(settings, engine))
        finally:
            await engine.close()

    try:
        return asyncio.run(go())
    except SatchelError as error:
        raise click.ClickException(error.message) from error


@main.group()
def users() -> None:
    """Users: each owns stores and holds API tokens."""


@users.command("create")
@click.argument("username")
@click.option(
    "--general-access",
    type=click.Choice(USER_GENERAL_ACCESS),
    default="RESTRICTED",
    help="What the user's stores with generalAccess FOLLOW_USER_SETTING allow (default RESTRICTED).",
)
@DATA_DIR
def users_create(username: str, general_access: str, data_dir: Path | None) -> None:
    """Create a user and print their first API token (shown once; only its digest is kept)."""
    user, token = _run(data_dir, lambda s: s.users.create(username, default_general_access=general_access))
    click.echo(f"Created user {user.username} (id {user.id}).")
    click.echo(f"API token: {token}")


@users.command("list")
@DATA_DIR
def users_list(data_dir: Path | None) -> None:
    """List users with their id, default general access and number of tokens."""
    rows = _run(data_dir, lambda s: s.users.all())
    click.echo(f"{'USERNAME':<24} {'ID':<18} {'DEFAULT ACCESS':<26} {'TOKENS':>6}  CREATED")
    for user, tokens in rows:
        click.echo(
            f"{user.username:<24} {user.id:<18} {user.default_general_access:<26} {tokens:>6}"
            f"  {iso(user.created_at)}"
        )


@users.command("set-access")
@click.argument("username")
@click.argument("general_access", type=click.Choice(USER_GENERAL_ACCESS))
@DATA_DIR
def users_set_access(username: str, general_access: str, data_dir: Path | None) -> None:
    """Set what a user's stores with generalAccess FOLLOW_USER_SETTING allow."""
    user = _run(data_dir, lambda s: s.users.set_default_access(username, general_access))
    click.echo(
        f"Stores of {user.username} that follow the user setting are now {user.default_general_access}."
    )


@main.group()
def tokens() -> None:
    """API tokens: several per user, stored only as digests."""


@tokens.command("create")
@click.argument("username")
@DATA_DIR
def tokens_create(username: str, data_dir: Path | None) -> None:
    """Create another API token for a user and print it (shown once)."""
    token = _run(data_dir, lambda s: s.users.create_token(username))
    click.echo(token)


@tokens.command("list")
@click.argument("username")
@DATA_DIR
def tokens_list(username: str, data_dir: Path | None) -> None:
    """List a user's tokens by id (the start of the token's SHA-256 digest; the token is not kept)."""
    rows = _run(data_dir, lambda s: s.users.tokens(username))
    click.echo(f"{'ID':<14} CREATED")
    for row in rows:
        click.echo(f"{token_id(row):<14} {iso(row.created_at)}")


@tokens.command("revoke")
@click.argument("token")
@DATA_DIR
def tokens_revoke(token: str, data_dir: Path | None) -> None:
    """Revoke a token, given the token itself or its id from `satchel tokens list`. Takes effect at once."""
    row = _run(data_dir, lambda s: s.users.revoke_token(token))
    click.echo(f"Revoked token {token_id(row)}.")


@main.command()
@click.argument("store")
@click.argument("username")
@click.option("--read", "access", flag_value="read", help="Let the user read records and list keys.")
@click.option("--write", "access", flag_value="write", help="Let the user also put and delete records.")
@click.option("--revoke", "access", flag_value="revoke", help="Take the user's access away.")
@DATA_DIR
def share(store: str, username: str, access: str | None, data_dir: Path | None) -> None:
    """Share STORE (its id or OWNER~NAME) with USERNAME, as its owner would."""
    if access is None:
        raise click.UsageError("Say what to give: --read, --write or --revoke.")

    async def work(services: Services) -> str:
        store_id, owner_name, name = split_reference(store)
        if store_id is None and not owner_name:
            raise click.UsageError("Name the store by its id or as OWNER~NAME.")
        row = await services.engine.store_by_id(store_id) if store_id else None
        if store_id is None:
            owner = await services.users.find(owner_name or "")
            row = await services.engine.store_by_name(owner.id, name or "")
        if row is None:
            raise click.ClickException(f"Key-value store {store!r} was not found.")
        as_owner = Caller(await services.users.find(row.user_id))
        await services.stores.share(as_owner, row.id, username, None if access == "revoke" else access)
        return row.name or row.id

    label = _run(data_dir, work)
    if access == "revoke":
        click.echo(f"{username} no longer has access to {label}.")
    else:
        click.echo(f"{username} can now {access} {label}.")


# --- Crawlee's local storage folders


@main.command("import")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--store", "store_name", help="The store to import one store folder into (default: its name).")
@click.option("--user", "username", help="Who owns the stores (default: the admin).")
@DATA_DIR
def import_folder(path: Path, store_name: str | None, username: str | None, data_dir: Path | None) -> None:
    """Copy a Crawlee storage folder's key-value stores (or one store folder) into named stores."""

    async def work(services: Services) -> crawlee_storage.Report:
        owner = await services.users.find(username or services.settings.admin_username)
        return await crawlee_storage.import_folders(services, Caller(owner), path, store_name=store_name)

    report = _run(data_dir, work)
    for name, count in report.stores.items():
        click.echo(f"{name}: {count} records")
    for problem in report.skipped:
        click.echo(f"skipped {problem}", err=True)


@main.command("export")
@click.argument("store")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--user", "username", help="Who reads the store (default: the admin); ~NAME is theirs.")
@DATA_DIR
def export_store(store: str, path: Path, username: str | None, data_dir: Path | None) -> None:
    """Write STORE (its id, ~NAME or OWNER~NAME) into PATH as Crawlee keeps it locally."""

    async def work(services: Services) -> tuple[Path, int]:
        owner = await services.users.find(username or services.settings.admin_username)
        return await crawlee_storage.export_store(services, Caller(owner), store, path)

    folder, count = _run(data_dir, work)
    click.echo(f"{count} records written to {folder}")


if __name__ == "__main__":
    main()
