"""The admin and their token made, or found: what `satchel serve` does first, in a process of its own."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from satchel.cli_options import check_pairing
from satchel.errors import SatchelError
from satchel.logs import configure_logging, stop_logging
from satchel.service.ids import token_hash
from satchel.service.services import build_services_from
from satchel.service.users import TOKEN_FILE, token_id
from satchel.settings import Settings


async def bootstrap(settings: Settings) -> dict[str, Any]:
    """The admin's token, whether it is new, and the id of the kept token it replaced (revoked), if any;
    refused (click.ClickException) for a blob store that is not the database's (storage/pairing.py), which
    a first start pairs with it.

    A SATCHEL_TOKEN other than the token kept in the data dir replaces it: the kept one is revoked, since
    whoever changes the admin token means the old one to stop working (a leak, a rotation). Other tokens of
    the admin (`satchel tokens create`, the Console's) are left alone.
    """
    services = build_services_from(settings, housekeeping=False)
    await services.start(background=False)
    try:
        # A node given another blob store than the database's bodies are in would answer 404 for each of
        # them, and keep the bodies it is sent where the other nodes cannot read them. The first start on a
        # new database pairs the two.
        await check_pairing(settings, services)
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


def bootstrap_now(settings: Settings) -> dict[str, Any]:
    """bootstrap() run to its end in a process forked from `satchel serve`'s, its logs written before it
    returns (the log writer thread does not survive a fork, and the process ends without atexit); a backend
    that does not answer or a URL Satchel cannot use refused as the command line refuses."""
    configure_logging(settings)
    try:
        return asyncio.run(bootstrap(settings))
    except (SatchelError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    finally:
        stop_logging()
