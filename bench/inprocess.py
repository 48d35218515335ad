"""Satchel's own Python cost per request, without a server or a socket: the app called as ASGI in a loop.

    python -m bench.inprocess DATA_DIR STORE_ID [get|put|head] [N]

The data dir must hold a seeded store (bench.seed); this is the profile-free view of the hot path that
py-spy's numbers are checked against. CPU time is the steadier figure on a shared machine.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from bench.servers import TOKEN
from satchel.server import create_app
from satchel.settings import Settings


async def main(data_dir: Path, store_id: str, method: str, n: int) -> None:
    app = create_app(Settings(data_dir=data_dir, token=TOKEN, log_level="warning", rate_limit=False))
    await app.startup()
    body = b"y" * 1024
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body if method == "PUT" else b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    def scope(key: str) -> dict[str, Any]:
        path = f"/v2/key-value-stores/{store_id}/records/{key}"
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8765"),
                (b"authorization", f"Bearer {TOKEN}".encode()),
                (b"content-type", b"application/octet-stream"),
                (b"content-length", b"1024"),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8765),
            "extensions": {},
        }

    keys = [f"k{random.randrange(100_000):06d}" for _ in range(n)]
    try:
        for rnd in range(3):
            began, cpu = time.perf_counter(), time.process_time()
            for key in keys:
                sent.clear()
                await app(scope(key), receive, send)
            took, cpu = time.perf_counter() - began, time.process_time() - cpu
            status = sent[0]["status"]
            print(
                f"{method} round {rnd}: {took / n * 1e6:.1f} us/request, {cpu / n * 1e6:.1f} us CPU"
                f" (status {status})"
            )
    finally:
        await app.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(
            Path(args[0]),
            args[1],
            (args[2] if len(args) > 2 else "get").upper(),
            int(args[3]) if len(args) > 3 else 20000,
        )
    )
