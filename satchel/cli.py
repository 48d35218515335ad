"""The `satchel` command: run the server, and manage users and tokens on its data (store commands are in
store_commands.py, `satchel run` in run_command.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from satchel import store_commands
from satchel.cli_options import run_on_storage, settings_from, storage_options
from satchel.clock import iso
from satchel.errors import SatchelError
from satchel.run_command import run_command
from satchel.server import build_services_from
from satchel.service.access import USER_GENERAL_ACCESS
from satchel.service.users import TOKEN_FILE, token_id
from satchel.serving import PortInUse, claim_port, run_granian
from satchel.settings import Settings


def _bootstrap_apart(settings: Settings) -> tuple[str, bool]:
    """Make the admin in a process of its own (`satchel bootstrap-admin`): the storage clients (asyncpg,
    obstore's runtime threads) must not exist in this process when granian forks its workers from it."""
    done = subprocess.run(
        [sys.executable, "-m", "satchel", "bootstrap-admin"],
        env={**os.environ, **settings_environment(settings)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise click.ClickException(done.stderr.strip().removeprefix("Error: ") or "Starting failed.")
    result = json.loads(done.stdout)
    return result["token"], result["created"]


async def _bootstrap(settings: Settings) -> tuple[str, bool]:
    services = build_services_from(settings, housekeeping=False)
    await services.start(background=False)
    try:
        _, token, created = await services.users.ensure_admin(
            settings.admin_username, settings.data_dir, settings.token
        )
    finally:
        await services.stop()
    return token, created


@click.group()
@click.version_option(package_name="satchel")
def main() -> None:
    """Satchel: a self-hosted key-value store speaking the Apify API v2."""


@main.command("bootstrap-admin", hidden=True)
def bootstrap_admin() -> None:
    """Make sure the admin and their token exist; print both as JSON (what `serve` runs first)."""
    settings = settings_from()
    logging.basicConfig(level=settings.log_level.upper())
    try:
        token, created = asyncio.run(_bootstrap(settings))
    except (SatchelError, ValueError) as error:  # a backend that does not answer, a URL Satchel cannot use
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps({"token": token, "created": created}))


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8765).")
@storage_options
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
    database: str | None,
    blob_store: str | None,
    workers: int | None,
    public_url: str | None,
    rate_limit: str | None,
) -> None:
    """Run the API server: on SQLite and local files with no configuration, or on PostgreSQL and S3."""
    settings = settings_from(
        host=host,
        port=port,
        data_dir=data_dir,
        database=database,
        blob_store=blob_store,
        workers=workers,
        public_url=public_url,
        rate_limit=None if rate_limit is None else rate_limit == "on",
    )
    # Before anything starts: a second server on a taken port would otherwise share it (SO_REUSEPORT).
    try:
        claim = claim_port(settings.host, settings.port)
    except PortInUse as error:
        raise click.ClickException(str(error)) from error
    try:
        _serve(settings)
    finally:
        if claim is not None:
            claim.close()


def _serve(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    token, created = _bootstrap_apart(settings)
    click.echo(f"Satchel API: {settings.base_url}/v2")
    click.echo(f"Console:     {settings.base_url}/console")
    click.echo(f"Data dir:    {settings.data_dir}")
    if created:
        click.echo(f"Admin token: {token}   (shown once; also kept in {settings.data_dir / TOKEN_FILE})")
    else:
        click.echo(f"Admin token: in {settings.data_dir / TOKEN_FILE}")
    # Workers are separate processes and read their settings from the environment.
    os.environ.update(settings_environment(settings))
    run_granian("satchel.serving:create_app", settings, factory=True)


def settings_environment(settings: Settings) -> dict[str, str]:
    """The SATCHEL_* variables that give another process these settings (engine blocks as NAME__FIELD)."""
    env = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, dict):
            env.update({f"SATCHEL_{name}__{k}".upper(): str(v) for k, v in value.items()})
        elif value is not None:
            env[f"SATCHEL_{name.upper()}"] = str(value)
    return env


# --- managing the data dir; safe while a server runs on it (its caches follow every change)


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
@storage_options
def users_create(username: str, general_access: str, **where: Any) -> None:
    """Create a user and print their first API token (shown once; only its digest is kept)."""
    user, token = run_on_storage(
        where, lambda s: s.users.create(username, default_general_access=general_access)
    )
    click.echo(f"Created user {user.username} (id {user.id}).")
    click.echo(f"API token: {token}")


@users.command("list")
@storage_options
def users_list(**where: Any) -> None:
    """List users with their id, default general access and number of tokens."""
    rows = run_on_storage(where, lambda s: s.users.all())
    click.echo(f"{'USERNAME':<24} {'ID':<18} {'DEFAULT ACCESS':<26} {'TOKENS':>6}  CREATED")
    for user, tokens in rows:
        click.echo(
            f"{user.username:<24} {user.id:<18} {user.default_general_access:<26} {tokens:>6}"
            f"  {iso(user.created_at)}"
        )


@users.command("set-access")
@click.argument("username")
@click.argument("general_access", type=click.Choice(USER_GENERAL_ACCESS))
@storage_options
def users_set_access(username: str, general_access: str, **where: Any) -> None:
    """Set what a user's stores with generalAccess FOLLOW_USER_SETTING allow."""
    user = run_on_storage(where, lambda s: s.users.set_default_access(username, general_access))
    click.echo(
        f"Stores of {user.username} that follow the user setting are now {user.default_general_access}."
    )


@main.group()
def tokens() -> None:
    """API tokens: several per user, stored only as digests."""


@tokens.command("create")
@click.argument("username")
@storage_options
def tokens_create(username: str, **where: Any) -> None:
    """Create another API token for a user and print it (shown once)."""
    token = run_on_storage(where, lambda s: s.users.create_token(username))
    click.echo(token)


@tokens.command("list")
@click.argument("username")
@storage_options
def tokens_list(username: str, **where: Any) -> None:
    """List a user's tokens by id (the start of the token's SHA-256 digest; the token is not kept)."""
    rows = run_on_storage(where, lambda s: s.users.tokens(username))
    click.echo(f"{'ID':<14} CREATED")
    for row in rows:
        click.echo(f"{token_id(row):<14} {iso(row.created_at)}")


@tokens.command("revoke")
@click.argument("token")
@storage_options
def tokens_revoke(token: str, **where: Any) -> None:
    """Revoke a token, given the token itself or its id from `satchel tokens list`. Takes effect at once."""
    row = run_on_storage(where, lambda s: s.users.revoke_token(token))
    click.echo(f"Revoked token {token_id(row)}.")


@main.command()
@storage_options
def migrate(**where: Any) -> None:
    """Bring the database's schema to this version of Satchel (servers also do it when they start)."""
    run_on_storage(where, lambda services: _nothing())
    click.echo("The database is up to date.")


async def _nothing() -> None:
    """Opening the storage migrates it; there is nothing more to do."""


main.add_command(run_command)
for command in (
    store_commands.share,
    store_commands.rotate_signing_key,
    store_commands.print_public_url,
    store_commands.import_folder,
    store_commands.export_store,
):
    main.add_command(command)

if __name__ == "__main__":
    main()
