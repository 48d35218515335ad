"""A key-value store folder written and read by Crawlee for Python's own file-system storage client, for the
import and export tests to check against what Crawlee itself does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from crawlee.configuration import Configuration
from crawlee.storage_clients import FileSystemStorageClient
from crawlee.storages import KeyValueStore


def write_with_crawlee(storage_dir: Path, name: str, values: dict[str, Any]) -> None:
    async def run() -> None:
        config = Configuration(storage_dir=str(storage_dir))
        kvs = await KeyValueStore.open(
            name=name, storage_client=FileSystemStorageClient(), configuration=config
        )
        for key, value in values.items():
            content_type = "image/png" if isinstance(value, bytes) else None
            await kvs.set_value(key, value, content_type=content_type)

    asyncio.run(run())


def read_with_crawlee(storage_dir: Path, name: str) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        config = Configuration(storage_dir=str(storage_dir))
        kvs = await KeyValueStore.open(
            name=name, storage_client=FileSystemStorageClient(), configuration=config
        )
        return {key.key: await kvs.get_value(key.key) async for key in kvs.iterate_keys()}

    return asyncio.run(run())
