"""A real Satchel server on loopback for the suite, started as a user would (`satchel serve`)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.backends import Backends

TOKEN = "apify_api_" + "t" * 36


@dataclass
class Server:
    base_url: str  # http://127.0.0.1:PORT (no /v2)
    token: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def api(self) -> str:
        return self.base_url + "/v2"

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.api, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path, *, token: str = TOKEN, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Server:
    port = free_port()
    # Rate limits are off unless a test turns them on: most tests write faster than 100 records/s to a store.
    full_env = {
        **os.environ,
        "SATCHEL_TOKEN": token,
        "SATCHEL_LOG_LEVEL": "warning",
        "SATCHEL_RATE_LIMIT": "off",
        **(env or {}),
    }
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(data_dir.parent / f"server-{port}.log", "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "satchel",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                *args,
            ],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a kill reaches the workers too
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(data_dir.parent / f'server-{port}.log').read_text()}")
        try:
            httpx.get(
                base + "/v2/users/me",
                headers={"authorization": f"Bearer {token}"} if token else {},
                timeout=1,
            )
            return Server(base, token, data_dir, process)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start within 30 s")


def stop_server(server: Server, *, kill: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    """PostgreSQL and SeaweedFS for the scale-out engines, each started when a test first needs it."""
    found = Backends(tmp_path_factory.mktemp("backends"))
    yield found
    found.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("satchel")
    srv = start_server(root / "data")
    yield srv
    stop_server(srv)


def servers_on(
    combo: str, backends: Backends, factory: pytest.TempPathFactory, **kwargs: Any
) -> Iterator[Server]:
    """A server on one engine combination with fresh data, for a module's `server` fixture to yield from."""
    where = backends.locations(combo)
    env = {
        "SATCHEL_DATABASE": where["database"],
        "SATCHEL_BLOB_STORE": where["blob_store"],
        **backends.env(combo),
        **kwargs.pop("env", {}),
    }
    srv = start_server(factory.mktemp(combo.replace("+", "-")) / "data", env=env, **kwargs)
    yield srv
    stop_server(srv)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def store(http: httpx.Client) -> dict[str, object]:
    """A fresh unnamed store for one test."""
    response = http.post("/key-value-stores")
    assert response.status_code == 201
    return response.json()["data"]  # type: ignore[no-any-return]
