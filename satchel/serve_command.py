"""`satchel serve`: make sure the admin exists (bootstrap.py, in a process of its own), then run the
server."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import click

from satchel.bootstrap import bootstrap_now
from satchel.cli_options import SQLITE_FILE, settings_from
from satchel.local_server import note_served_url
from satchel.logs import configure_logging
from satchel.service.users import TOKEN_FILE
from satchel.serving import PortInUse, claim_port, run_server
from satchel.setting_flags import flag_values, setting_options
from satchel.settings import CONFIG_VARIABLE, Settings


def _bootstrap_apart(settings: Settings) -> dict[str, Any]:
    """bootstrap() in a child process forked from this one: the storage clients it makes (asyncpg, obstore's
    runtime threads) must not exist here when granian forks its workers, and a forked child needs none of
    the second of imports a fresh interpreter would. Called before this process starts its log writer, so
    that it forks with no other thread running (which Python 3.12 and later warn against)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as child:
        try:
            return child.submit(bootstrap_now, settings).result()
        except BrokenProcessPool as exc:  # the child killed (out of memory, a signal) before it answered
            raise click.ClickException(f"Starting failed: the process making the admin ended: {exc}") from exc


@click.command()
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
    settings = settings_from(**flag_values(flags))
    # Before anything starts: a second server on a taken port would otherwise share it (SO_REUSEPORT).
    try:
        claim = claim_port(settings.host, settings.port)
    except PortInUse as error:
        raise click.ClickException(str(error)) from error
    try:
        _serve(settings)
    except PermissionError as error:  # a data dir (or a file in it) this user may not write: said in a line
        where = f" {error.filename}" if error.filename else ""
        raise click.ClickException(
            f"Starting failed: {error.strerror or error}:{where}. The data dir must be writable by the user"
            " Satchel runs as."
        ) from error
    finally:
        if claim is not None:
            claim.close()


def _serve(settings: Settings) -> None:
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    data_dir = settings.data_dir
    made = _made_data_dir(data_dir)
    admin = _bootstrap_apart(settings)
    configure_logging(settings)
    note_served_url(settings)
    click.echo(made)
    click.echo(f"Satchel API: {settings.base_url}/v2")
    click.echo(f"Console:     {settings.base_url}/console")
    token_file = data_dir / TOKEN_FILE
    if admin["replaced"]:
        click.echo(
            f"Admin token: SATCHEL_TOKEN replaces the admin token kept before (id {admin['replaced']}), which"
            f" is now revoked; SATCHEL_TOKEN is kept in {token_file}"
        )
    elif settings.token:  # the operator's own, never written into a log: said alike on every start and node
        click.echo(f"Admin token: the one SATCHEL_TOKEN gives (also kept in {token_file})")
    elif admin["created"]:
        click.echo(f"Admin token: {admin['token']}   (shown once; also kept in {token_file})")
    else:
        click.echo(f"Admin token: in {token_file}")
    # Workers are separate processes and read their settings from the environment.
    os.environ.update(settings_environment(settings))
    run_server(settings)


def _made_data_dir(data_dir: Path) -> str:
    """Make the data dir if it is missing; the line that says what was found there. New is what holds no
    Satchel data yet (no database, no admin token): a folder a failed start left empty is still new."""
    if data_dir.exists() and not data_dir.is_dir():
        raise click.ClickException(
            f"The data dir {data_dir} is a file: name a folder (it is made if missing)."
        )
    others = data_dir.is_dir() and any(data_dir.iterdir())
    new = not any((data_dir / name).exists() for name in (SQLITE_FILE, TOKEN_FILE))
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise click.ClickException(
            f"Cannot make the data dir {data_dir}: {error.strerror or error}."
        ) from error
    if not new:
        return f"Using the data dir at {data_dir}"
    return f"Created a new data dir at {data_dir}" + (" (beside the files already in it)" if others else "")


def settings_environment(settings: Settings) -> dict[str, str]:
    """The SATCHEL_* variables that give another process these settings (engine blocks as NAME__FIELD)."""
    env = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, dict):
            env.update({f"SATCHEL_{name}__{k}".upper(): str(v) for k, v in value.items()})
        elif value is not None:
            env[f"SATCHEL_{name.upper()}"] = str(value)
    return env
