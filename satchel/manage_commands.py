"""Managing the data dir from the command line: users, tokens, and the database's schema. Each is safe while a
server runs on the same data (its caches follow every change)."""

from __future__ import annotations

from typing import Any

import click

from satchel.cli_options import described_blob_store, run_on_storage, settings_from, storage_options
from satchel.clock import iso
from satchel.service.access import USER_GENERAL_ACCESS
from satchel.service.users import token_id


@click.group()
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


@click.group()
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


@click.command()
@storage_options
def migrate(**where: Any) -> None:
    """Bring the database's schema to this version of Satchel (servers also do it when they start).

    Given the blob store too (--blob-store or SATCHEL_BLOB_STORE, as in the nodes' environment file), it also
    checks that it is the database's and, on a new database, pairs the two as the first node's start would:
    then a node started later with another blob store is refused, whichever node starts first.
    """
    settings = settings_from(**where)
    run_on_storage(where, lambda services: _nothing(), bodies=bool(settings.blob_store))
    click.echo("The database's schema is up to date: any steps it lacked were applied just now.")
    if settings.blob_store:
        store = described_blob_store(settings).store
        click.echo(f"The database is paired with {store}: a node given another blob store is refused.")


async def _nothing() -> None:
    """Opening the storage migrates it; there is nothing more to do."""
