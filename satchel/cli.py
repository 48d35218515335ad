"""The `satchel` command: run the server, and manage users, tokens and sharing on its data dir."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import click

from satchel import crawlee_storage
from satchel.clock import iso
from satchel.errors import SatchelError
from satchel.run_command import run_command
from satchel.server import build_services_from
from satchel.service import Services, signing
from satchel.service.access import USER_GENERAL_ACCESS, Caller
from satchel.service.signing import DEFAULT_LINK_SECONDS
from satchel.service.users import TOKEN_FILE, token_id
from satchel.service.validation import check_key, split_reference
from satchel.serving import PortInUse, claim_port, run_granian
from satchel.settings import Settings
from satchel.storage import StorageKind, StoreRow

T = TypeVar("T")
MAX_LINK_SECONDS = 10 * 365 * 86400
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


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the command line's explicit options on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


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
    settings = _settings()
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
    settings = _settings(
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


def _run(where: dict[str, Any], work: Callable[[Services], Awaitable[T]]) -> T:
    """Run one piece of work against the storage the options name, turning Satchel's errors into a clean
    exit."""
    settings = _settings(**where)

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
    user, token = _run(where, lambda s: s.users.create(username, default_general_access=general_access))
    click.echo(f"Created user {user.username} (id {user.id}).")
    click.echo(f"API token: {token}")


@users.command("list")
@storage_options
def users_list(**where: Any) -> None:
    """List users with their id, default general access and number of tokens."""
    rows = _run(where, lambda s: s.users.all())
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
    user = _run(where, lambda s: s.users.set_default_access(username, general_access))
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
    token = _run(where, lambda s: s.users.create_token(username))
    click.echo(token)


@tokens.command("list")
@click.argument("username")
@storage_options
def tokens_list(username: str, **where: Any) -> None:
    """List a user's tokens by id (the start of the token's SHA-256 digest; the token is not kept)."""
    rows = _run(where, lambda s: s.users.tokens(username))
    click.echo(f"{'ID':<14} CREATED")
    for row in rows:
        click.echo(f"{token_id(row):<14} {iso(row.created_at)}")


@tokens.command("revoke")
@click.argument("token")
@storage_options
def tokens_revoke(token: str, **where: Any) -> None:
    """Revoke a token, given the token itself or its id from `satchel tokens list`. Takes effect at once."""
    row = _run(where, lambda s: s.users.revoke_token(token))
    click.echo(f"Revoked token {token_id(row)}.")


@main.command()
@click.argument("store")
@click.argument("username")
@click.option("--read", "access", flag_value="read", help="Let the user read records and list keys.")
@click.option("--write", "access", flag_value="write", help="Let the user also put and delete records.")
@click.option("--revoke", "access", flag_value="revoke", help="Take the user's access away.")
@storage_options
def share(store: str, username: str, access: str | None, **where: Any) -> None:
    """Share STORE (its id or OWNER~NAME) with USERNAME, as its owner would."""
    if access is None:
        raise click.UsageError("Say what to give: --read, --write or --revoke.")

    async def work(services: Services) -> str:
        as_owner, row = await _as_owner(services, store)
        await services.stores.share(as_owner, row.id, username, None if access == "revoke" else access)
        return row.name or row.id

    label = _run(where, work)
    if access == "revoke":
        click.echo(f"{username} no longer has access to {label}.")
        click.echo(
            f"Signed URLs of {label} handed out before still work; `satchel rotate-signing-key` cuts them."
        )
    else:
        click.echo(f"{username} can now {access} {label}.")


@main.command("rotate-signing-key")
@click.argument("store")
@storage_options
def rotate_signing_key(store: str, **where: Any) -> None:
    """Give STORE (its id or OWNER~NAME) a new URL signing secret key: every URL signed with the old one stops
    working, on every running server, at once."""

    async def work(services: Services) -> str:
        as_owner, row = await _as_owner(services, store)
        await services.stores.rotate_signing_key(as_owner, row.id)
        return row.name or row.id

    label = _run(where, work)
    click.echo(f"{label} has a new URL signing secret key; URLs signed with the old one no longer work.")


@main.command("public-url")
@click.argument("store")
@click.argument("key", required=False)
@click.option(
    "--expires-in",
    default=f"{DEFAULT_LINK_SECONDS // 3600}h",
    show_default=True,
    help="How long the URL works: seconds, or a number with s, m, h or d; `never` for no expiry.",
)
@storage_options
def print_public_url(store: str, key: str | None, expires_in: str, **where: Any) -> None:
    """Print signed URLs that read STORE (its id or OWNER~NAME) without a token: its record KEY, or else its
    keys listing and its records as a ZIP. They expire (in a day by default) and die sooner if the store's
    signing key is rotated. The base URL is the `public_url` setting (SATCHEL_PUBLIC_URL)."""
    seconds = _duration(expires_in)
    if key is not None:
        check_key(key)

    async def work(services: Services) -> tuple[list[str], int]:
        _, row = await _as_owner(services, store)
        secret = row.url_signing_secret_key
        base = f"{services.settings.base_url}/v2/key-value-stores/{row.id}"
        expiry = signing.expires_in(seconds) if seconds else 0
        if key is not None:
            signature = (
                signing.expiring_record_signature(secret, key, expiry)
                if expiry
                else signing.record_signature(secret, key)
            )
            return [f"{base}/records/{quote(key, safe='')}?{urlencode({'signature': signature})}"], expiry
        query = urlencode({"signature": signing.storage_signature(secret, row.id, expiry)})
        return [f"{base}/keys?{query}", f"{base}/records?{query}"], expiry

    urls, expiry = _run(where, work)
    for url in urls:
        click.echo(url)
    click.echo(f"(expires {iso(expiry)})" if expiry else "(never expires)", err=True)


async def _as_owner(services: Services, store: str) -> tuple[Caller, StoreRow]:
    """The store a CLI argument names (its id or OWNER~NAME), with its owner as the caller to act as."""
    store_id, owner_name, name = split_reference(store)
    if store_id is None and not owner_name:
        raise click.UsageError("Name the store by its id or as OWNER~NAME.")
    row = await services.storage.stores.by_id(store_id) if store_id else None
    if row is not None and row.kind is not StorageKind.KEY_VALUE_STORE:
        row = None
    if store_id is None:
        owner = await services.users.find(owner_name or "")
        row = await services.storage.stores.by_name(owner.id, StorageKind.KEY_VALUE_STORE, name or "")
    if row is None:
        raise click.ClickException(f"Key-value store {store!r} was not found.")
    return Caller(await services.users.find(row.user_id)), row


def _duration(text: str) -> int:
    """Seconds from `3600`, `90s`, `30m`, `24h` or `7d`; 0 for `never`."""
    value = text.strip().lower()
    if value == "never":
        return 0
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (value[:-1], units[value[-1]]) if value[-1:] in units else (value, 1)
    if not number.isdigit() or int(number) == 0 or int(number) * unit > MAX_LINK_SECONDS:
        raise click.BadParameter(
            f"{text!r} is not a duration of up to 10 years (like 3600, 30m, 24h or 7d) or `never`.",
            param_hint="--expires-in",
        )
    return int(number) * unit


# --- Crawlee's local storage folders


@main.command("import")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--store", "store_name", help="The store to import one store folder into (default: its name).")
@click.option("--user", "username", help="Who owns the stores (default: the admin).")
@storage_options
def import_folder(path: Path, store_name: str | None, username: str | None, **where: Any) -> None:
    """Copy a Crawlee storage folder's key-value stores (or one store folder) into named stores."""

    async def work(services: Services) -> crawlee_storage.Report:
        owner = await services.users.find(username or services.settings.admin_username)
        return await crawlee_storage.import_folders(services, Caller(owner), path, store_name=store_name)

    report = _run(where, work)
    for name, count in report.stores.items():
        click.echo(f"{name}: {count} records")
    for problem in report.skipped:
        click.echo(f"skipped {problem}", err=True)


@main.command("export")
@click.argument("store")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--user", "username", help="Who reads the store (default: the admin); ~NAME is theirs.")
@storage_options
def export_store(store: str, path: Path, username: str | None, **where: Any) -> None:
    """Write STORE (its id, ~NAME or OWNER~NAME) into PATH as Crawlee keeps it locally."""

    async def work(services: Services) -> crawlee_storage.Exported:
        owner = await services.users.find(username or services.settings.admin_username)
        return await crawlee_storage.export_store(services, Caller(owner), store, path)

    done = _run(where, work)
    click.echo(f"{done.records} records written to {done.folder}")
    if done.own_names:
        click.echo(
            f"{len(done.own_names)} of them under Satchel's own names (~...), as Crawlee's layout cannot name"
            " their keys; `satchel import` reads them, Crawlee does not see them:",
            err=True,
        )
        for key in done.own_names:
            click.echo(f"  {key}", err=True)


@main.command()
@storage_options
def migrate(**where: Any) -> None:
    """Bring the database's schema to this version of Satchel (servers also do it when they start)."""
    _run(where, lambda services: _nothing())
    click.echo("The database is up to date.")


async def _nothing() -> None:
    """Opening the storage migrates it; there is nothing more to do."""


main.add_command(run_command)

if __name__ == "__main__":
    main()
