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
from satchel.backup import commands as backup_commands
from satchel.cli_options import SQLITE_FILE, run_on_storage, settings_from, storage_options
from satchel.clock import iso
from satchel.errors import SatchelError
from satchel.kv_commands import kv
from satchel.logs import configure_logging
from satchel.run_command import run_command
from satchel.server import build_services_from
from satchel.service.access import USER_GENERAL_ACCESS
from satchel.service.ids import token_hash
from satchel.service.users import TOKEN_FILE, token_id
from satchel.serving import PortInUse, claim_port, run_server
from satchel.setting_flags import flag_values, setting_options
from satchel.settings import CONFIG_VARIABLE, Settings


def _bootstrap_apart(settings: Settings) -> dict[str, Any]:
    """Make the admin in a process of its own (`satchel bootstrap-admin`): the storage clients (asyncpg,
    obstore's runtime threads) must not exist in this process when granian forks its workers from it.
    Answers what `_bootstrap` does."""
    done = subprocess.run(
        [sys.executable, "-m", "satchel", "bootstrap-admin"],
        env={**os.environ, **settings_environment(settings)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise click.ClickException(done.stderr.strip().removeprefix("Error: ") or "Starting failed.")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def _bootstrap(settings: Settings) -> dict[str, Any]:
    """The admin's token, whether it is new, and the id of the kept token it replaced (revoked), if any.

    A SATCHEL_TOKEN other than the token kept in the data dir replaces it: the kept one is revoked, since
    whoever changes the admin token means the old one to stop working (a leak, a rotation). Other tokens of
    the admin (`satchel tokens create`, the Console's) are left alone.
    """
    services = build_services_from(settings, housekeeping=False)
    await services.start(background=False)
    try:
        token_file = settings.data_dir / TOKEN_FILE
        kept = token_file.read_text().strip() if token_file.is_file() else ""
        admin, token, created = await services.users.ensure_admin(
            settings.admin_username, settings.data_dir, settings.token
        )
        replaced = None
        if settings.token and kept and kept != token:
            holder = await services.storage.users.by_token_hash(token_hash(kept))
            if holder is not None and holder.id == admin.id:
                replaced = token_id(await services.users.revoke_token(kept))
    finally:
        await services.stop()
    return {"token": token, "created": created, "replaced": replaced}


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
        result = asyncio.run(_bootstrap(settings))
    except (SatchelError, ValueError) as error:  # a backend that does not answer, a URL Satchel cannot use
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(result))


@main.command()
@setting_options
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=f"A TOML file of settings, below flags and variables (also {CONFIG_VARIABLE}).",
)
def serve(config: Path | None, **flags: Any) -> None:
    """Run the API server: on SQLite and local files with no configuration, or on PostgreSQL and S3.

    Every setting has a flag (docs/settings.md lists them with their variables and defaults).
    """
    if config is not None:
        os.environ[CONFIG_VARIABLE] = str(config)  # read by Settings, here and in every process started
    try:
        settings = settings_from(**flag_values(flags))
    except ValueError as error:  # a bad value, or a config file that cannot be used
        raise click.ClickException(str(error)) from error
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
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    data_dir = settings.data_dir
    new = not data_dir.is_dir() if settings.database else not (data_dir / SQLITE_FILE).is_file()
    data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(settings)
    admin = _bootstrap_apart(settings)
    click.echo(f"{'Created a new' if new else 'Using the'} data dir at {data_dir}")
    click.echo(f"Satchel API: {settings.base_url}/v2")
    click.echo(f"Console:     {settings.base_url}/console")
    token_file = data_dir / TOKEN_FILE
    if admin["replaced"]:
        click.echo(
            f"Admin token: SATCHEL_TOKEN replaces the admin token kept before (id {admin['replaced']}), which"
            f" is now revoked; SATCHEL_TOKEN is kept in {token_file}"
        )
    elif admin["created"]:
        click.echo(f"Admin token: {admin['token']}   (shown once; also kept in {token_file})")
    else:
        click.echo(f"Admin token: in {token_file}")
    # Workers are separate processes and read their settings from the environment.
    os.environ.update(settings_environment(settings))
    run_server(settings)


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
        where, lambda s: s.users.create(username, default_general_access=general_access), bodies=False
    )
    click.echo(f"Created user {user.username} (id {user.id}).")
    click.echo(f"API token: {token}")


@users.command("list")
@storage_options
def users_list(**where: Any) -> None:
    """List users with their id, default general access and number of tokens."""
    rows = run_on_storage(where, lambda s: s.users.all(), bodies=False)
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
    user = run_on_storage(where, lambda s: s.users.set_default_access(username, general_access), bodies=False)
    click.echo(
        f"Stores of {user.username} that follow the user setting are now {user.default_general_access}."
    )


@main.group()
def tokens() -> None:
    """API tokens: several per user, stored only as digests."""


@tokens.command("create")
@click.argument("username")
@click.option("--name", default=None, help="A name to tell the token apart (shown by `tokens list`).")
@storage_options
def tokens_create(username: str, name: str | None, **where: Any) -> None:
    """Create another API token for a user and print it (shown once)."""
    token = run_on_storage(where, lambda s: s.users.create_token(username, name=name), bodies=False)
    click.echo(token)


@tokens.command("list")
@click.argument("username")
@storage_options
def tokens_list(username: str, **where: Any) -> None:
    """List a user's tokens by id (the start of the token's SHA-256 digest; the token is not kept)."""
    rows = run_on_storage(where, lambda s: s.users.tokens(username), bodies=False)
    click.echo(f"{'ID':<14} {'CREATED':<24} NAME")
    for row in rows:
        click.echo(f"{token_id(row):<14} {iso(row.created_at):<24} {row.name or ''}".rstrip())


@tokens.command("revoke")
@click.argument("token")
@storage_options
def tokens_revoke(token: str, **where: Any) -> None:
    """Revoke a token, given the token itself or its id from `satchel tokens list`. Takes effect at once."""
    row = run_on_storage(where, lambda s: s.users.revoke_token(token), bodies=False)
    click.echo(f"Revoked token {token_id(row)}.")


@main.command()
@storage_options
def migrate(**where: Any) -> None:
    """Bring the database's schema to this version of Satchel (servers also do it when they start)."""
    run_on_storage(where, lambda services: _nothing(), bodies=False)
    click.echo("The database is up to date.")


async def _nothing() -> None:
    """Opening the storage migrates it; there is nothing more to do."""


main.add_command(run_command)
main.add_command(kv)
main.add_command(backup_commands.backup)
main.add_command(backup_commands.restore)
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
