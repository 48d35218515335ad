"""`satchel bootstrap-admin`, which `satchel serve` runs first in a process of its own: the admin and their
token made, or found. It loads the storage and the services only, not the API: a server start waits for it."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import click

from satchel.cli_options import settings_from
from satchel.errors import SatchelError
from satchel.service.ids import token_hash
from satchel.service.services import build_services_from
from satchel.service.users import TOKEN_FILE, token_id
from satchel.settings import Settings


async def bootstrap(settings: Settings) -> dict[str, Any]:
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


@click.command("bootstrap-admin", hidden=True)
def bootstrap_admin() -> None:
    """Make sure the admin and their token exist; print both as JSON (what `serve` runs first)."""
    settings = settings_from()
    logging.basicConfig(level=settings.log_level.upper())
    try:
        result = asyncio.run(bootstrap(settings))
    except (SatchelError, ValueError) as error:  # a backend that does not answer, a URL Satchel cannot use
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(result))
