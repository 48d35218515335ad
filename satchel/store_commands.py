"""Commands on one key-value store, as its owner: sharing, signing keys and public URLs, and Crawlee's local
storage folders in and out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import click
from click.core import ParameterSource

from satchel.cli_options import run_on_storage, say_list, storage_options
from satchel.clock import iso
from satchel.crawlee_storage import exporting, importing
from satchel.crawlee_storage.stores import LocalStores, RemoteStores, Stores
from satchel.errors import InvalidRequest, NotFound
from satchel.local_server import local_base_url
from satchel.remote import connection, record_count, run_remote, server_options
from satchel.service import signing
from satchel.service.access import Caller
from satchel.service.services import Services
from satchel.service.signing import DEFAULT_LINK_SECONDS
from satchel.service.validation import NAME_RE, check_key, is_digits, split_reference
from satchel.storage import StorageKind, StoreRow

MAX_LINK_SECONDS = 10 * 365 * 86400
T = TypeVar("T")


@click.command()
@click.argument("store")
@click.argument("username")
@click.option("--read", is_flag=True, help="Let the user read records and list keys.")
@click.option("--write", is_flag=True, help="Let the user also put and delete records.")
@click.option("--revoke", is_flag=True, help="Take the user's access away.")
@storage_options
def share(store: str, username: str, read: bool, write: bool, revoke: bool, **where: Any) -> None:
    """Share STORE (its id, NAME, ~NAME or OWNER~NAME; a name alone is the admin's) with USERNAME, as its
    owner would."""
    # Three flags rather than one option with three flag values, which took the last one given.
    given = [name for name, on in (("read", read), ("write", write), ("revoke", revoke)) if on]
    if not given:
        raise click.UsageError("Say what to give: --read, --write or --revoke.")
    if len(given) > 1:
        raise click.UsageError(f"Give one of --read, --write and --revoke, not {' and '.join(given)}.")
    access = given[0]

    async def work(services: Services) -> str:
        as_owner, row = await _as_owner(services, store)
        await services.stores.share(as_owner, row.id, username, None if access == "revoke" else access)
        return row.name or row.id

    label = run_on_storage(where, work, bodies=False)
    if access == "revoke":
        click.echo(f"{username} no longer has access to {label}.")
        click.echo(
            f"Signed URLs of {label} handed out before still work; `satchel rotate-signing-key` cuts them."
        )
    else:
        click.echo(f"{username} can now {access} {label}.")


@click.command("rotate-signing-key")
@click.argument("store")
@storage_options
def rotate_signing_key(store: str, **where: Any) -> None:
    """Give STORE (its id, NAME, ~NAME or OWNER~NAME) a new URL signing secret key: every URL signed with the
    old one stops working, on every running server, at once."""

    async def work(services: Services) -> str:
        as_owner, row = await _as_owner(services, store)
        await services.stores.rotate_signing_key(as_owner, row.id)
        return row.name or row.id

    label = run_on_storage(where, work, bodies=False)
    click.echo(f"{label} has a new URL signing secret key; URLs signed with the old one no longer work.")


@click.command("public-url")
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
    """Print signed URLs that read STORE (its id, NAME, ~NAME or OWNER~NAME) without a token: its record
    KEY, or else its keys listing and its records as a ZIP. They expire (in a day by default) and die sooner
    if the store's signing key is rotated. The base URL is the `public_url` setting (SATCHEL_PUBLIC_URL), else
    the address the last `satchel serve` on the data dir answered on."""
    seconds = _duration(expires_in)
    if key is not None:
        try:
            check_key(key)
        except InvalidRequest as error:
            raise click.BadParameter(error.message, param_hint="KEY") from error

    async def work(services: Services) -> tuple[list[str], int]:
        _, row = await _as_owner(services, store)
        secret = row.url_signing_secret_key
        base = f"{local_base_url(services.settings)}/v2/key-value-stores/{row.id}"
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

    urls, expiry = run_on_storage(where, work, bodies=False)
    for url in urls:
        click.echo(url)
    click.echo(f"(expires {iso(expiry)})" if expiry else "(never expires)", err=True)


async def _as_owner(services: Services, store: str) -> tuple[Caller, StoreRow]:
    """The store a CLI argument names, with its owner as the caller to act as: its id, OWNER~NAME, or ~NAME
    and NAME for the admin's, as `export` reads them by default (a bare word is tried as an id first)."""
    store_id, owner_name, name = split_reference(store)
    admin = services.settings.admin_username
    row = await services.storage.stores.by_id(store_id) if store_id else None
    if row is not None and row.kind is not StorageKind.KEY_VALUE_STORE:
        row = None
    if row is None and store_id is not None and NAME_RE.fullmatch(store_id):
        owner_name, name = admin, store_id
    if owner_name is not None:
        owner = await services.users.find(owner_name or admin)
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
    if not is_digits(number) or int(number) == 0 or int(number) * unit > MAX_LINK_SECONDS:
        raise click.BadParameter(
            f"{text!r} is not a duration of up to 10 years (like 3600, 30m, 24h or 7d) or `never`.",
            param_hint="--expires-in",
        )
    return int(number) * unit


# --- Crawlee's local storage folders, on the data here or on a running server

REMOTE_RULE = (
    "It works on a running server, over its API, when --url is given, or when SATCHEL_URL is set and none of"
    " --data-dir, --database and --blob-store is (then --token or SATCHEL_TOKEN says who acts); else on the"
    " data here."
)


def _server(
    url: str | None, token: str | None, username: str | None, where: dict[str, Any]
) -> tuple[str, str] | None:
    """The server (URL, token) to work on over the API, or None to work on the data the options name."""
    if url is None:
        return None
    here = any(where.get(name) is not None for name in ("data_dir", "database", "blob_store"))
    given = click.get_current_context().get_parameter_source("url") is ParameterSource.COMMANDLINE
    if here and given:
        raise click.UsageError(
            "--url works on a running server, --data-dir, --database and --blob-store on the data here:"
            " give one or the other."
        )
    if here:
        return None
    if username is not None:
        raise click.UsageError("--user is for the data here; on a server, the token's user acts.")
    return connection(url, token)


def _on_stores(
    server: tuple[str, str] | None,
    username: str | None,
    where: dict[str, Any],
    work: Callable[[Stores], Awaitable[T]],
    *,
    writes: bool,
) -> T:
    """Run the work on the stores: over the API when `server` is given, else on the storage here as
    `username` (default: the admin). `writes`: whether it writes records (run_on_storage)."""
    if server is not None:
        return run_remote(*server, lambda remote: work(RemoteStores(remote)))

    async def local(services: Services) -> T:
        owner = await services.users.find(username or services.settings.admin_username)
        try:
            return await work(LocalStores(services, Caller(owner)))
        except NotFound as error:
            if username is not None:
                raise
            # The admin reads only what is theirs or shared with them, like any user.
            hint = " The data here is read as the admin: for another user's store, pass --user OWNER."
            raise NotFound(error.message + hint, type=error.type) from error

    return run_on_storage(where, local, bodies=True, writes=writes)


@click.command(
    "import",
    help=f"""Copy a Crawlee storage folder's key-value stores (or one store folder) into named stores.

{REMOTE_RULE}""",
)
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--store", "store_name", help="The store to import one store folder into (default: its name).")
@click.option("--user", "username", help="Who owns the stores (default: the admin); only on the data here.")
@storage_options
@server_options
def import_folder(
    path: Path, store_name: str | None, username: str | None, url: str | None, token: str | None, **where: Any
) -> None:
    server = _server(url, token, username, where)
    report = _on_stores(
        server,
        username,
        where,
        lambda stores: importing.import_folders(stores, path, store_name=store_name),
        writes=True,
    )
    for name, count in report.stores.items():
        click.echo(f"{name}: {record_count(count)}")
    if not report.stores:
        click.echo(f"No key-value store was imported from {path}.", err=True)
    for problem in report.skipped:
        click.echo(f"skipped {problem}", err=True)
    if report.skipped:
        click.echo(f"{len(report.skipped)} not imported, each with why, above.", err=True)
    if not report.stores:  # a script must not take a folder with nothing to import for a done import
        raise click.exceptions.Exit(1)


@click.command(
    "export",
    help=f"""Write STORE (its id, NAME, ~NAME or OWNER~NAME) into PATH as Crawlee keeps it locally.

{REMOTE_RULE}""",
)
@click.argument("store")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--user", "username", help="Who reads the store (default: the admin); only on the data here.")
@storage_options
@server_options
def export_store(
    store: str, path: Path, username: str | None, url: str | None, token: str | None, **where: Any
) -> None:
    server = _server(url, token, username, where)
    done = _on_stores(
        server, username, where, lambda stores: exporting.export_store(stores, store, path), writes=False
    )
    click.echo(f"{record_count(done.records)} written to {done.folder}")
    if done.own_names:
        say_list(
            f"{len(done.own_names)} of them under Satchel's own names (~...), as Crawlee's layout cannot name"
            " their keys; `satchel import` reads them, Crawlee does not see them:",
            list(done.own_names),
        )
