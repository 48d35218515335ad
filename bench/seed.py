"""Filling stores before a figure runs: Satchel through its own service layer, peers through HTTP.

Satchel is seeded in-process (service -> storage, the same path a PUT takes after the HTTP layer), which is
far quicker than a million HTTP round trips; everything measured afterwards goes through HTTP.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from bench.harness import Load, wrk_command
from satchel.service.access import Caller
from satchel.service.services import build_services_from
from satchel.settings import Settings

BATCH = 2000


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _seed(
    data_dir: Path,
    token: str,
    name: str,
    keys: Sequence[str],
    body: Callable[[int], bytes],
    database: str,
    blob_store: str,
) -> str:
    settings = Settings(data_dir=data_dir, token=token, database=database, blob_store=blob_store)
    services = build_services_from(settings, housekeeping=False)
    await services.start(background=False)
    try:
        user, _, _ = await services.users.ensure_admin(settings.admin_username, data_dir, token)
        caller = Caller(user)
        store, _ = await services.stores.get_or_create(caller, name, None)
        for start in range(0, len(keys), BATCH):
            await asyncio.gather(
                *(
                    services.records.put(
                        caller,
                        store.id,
                        key,
                        content_type="application/octet-stream",
                        content_encoding=None,
                        chunks=_one(body(start + i)),
                    )
                    for i, key in enumerate(keys[start : start + BATCH])
                )
            )
        return store.id
    finally:
        await services.stop()


def satchel_store(
    data_dir: Path,
    token: str,
    name: str,
    keys: Sequence[str],
    body: Callable[[int], bytes],
    *,
    database: str = "",
    blob_store: str = "",
) -> tuple[str, float]:
    """Create a named store holding these keys; returns its id and the seconds it took.

    `database` and `blob_store` pick the scale-out engines, as the server's settings of those names do (S3
    credentials come from this process's environment, as they do for a server).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    store_id = asyncio.run(_seed(data_dir, token, name, keys, body, database, blob_store))
    return store_id, time.perf_counter() - began


def over_http(load: Load) -> float:
    """PUT keys 0 .. load.keys-1 once each with wrk (the Lua script's seed mode); returns seconds taken."""
    began = time.perf_counter()
    seed = Load(**{**load.__dict__, "mode": "seed"})
    subprocess.run(
        wrk_command(seed, 600, None), env={**os.environ, **seed.env()}, capture_output=True, check=True
    )
    return time.perf_counter() - began
