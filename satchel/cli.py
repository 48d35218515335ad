"""The `satchel` command: run the server (more commands come with users, tokens and import/export)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import click
from granian import Granian
from granian.constants import Interfaces

from satchel.service.users import TOKEN_FILE, Users
from satchel.settings import Settings
from satchel.storage.factory import build_engine


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
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=None, help="Where data lives (./satchel-data)."
)
@click.option("--workers", type=int, default=None, help="Server processes (default 1).")
@click.option(
    "--public-url", default=None, help="Base URL clients reach the server at, if not http://host:port."
)
def serve(
    host: str | None, port: int | None, data_dir: Path | None, workers: int | None, public_url: str | None
) -> None:
    """Run the API server on the embedded engine (SQLite and local files); no configuration needed."""
    settings = _settings(host=host, port=port, data_dir=data_dir, workers=workers, public_url=public_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    token, created = asyncio.run(_bootstrap(settings))
    click.echo(f"Satchel API: {settings.base_url}/v2")
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
        **__import__("json").loads(os.environ.get("XBENCH_GRANIAN", "{}")),
    ).serve()


if __name__ == "__main__":
    main()
