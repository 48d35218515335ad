"""A real Satchel server on loopback for the suite, started as a user would (`satchel serve`)."""

from __future__ import annotations

import contextlib
import http.client
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
from urllib.parse import urlparse

import httpx
import pytest

from tests.harness.backends import COMBOS, Backends
from tests.harness.inprocess import BASE_URL as IN_PROCESS_URL
from tests.harness.inprocess import InProcessApp

TOKEN = "apify_api_" + "t" * 36


@dataclass
class Server:
    """A Satchel to test against: a `satchel serve` process on loopback, or the app in this process."""

    base_url: str  # http://127.0.0.1:PORT (no /v2)
    token: str
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    app: InProcessApp | None = None

    @property
    def api(self) -> str:
        return self.base_url + "/v2"

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"authorization": f"Bearer {token or self.token}"}
        if self.app is not None:
            kwargs["transport"] = self.app.transport
        return httpx.Client(base_url=self.api, headers=headers, timeout=60, **kwargs)

    def anonymous(self, **kwargs: Any) -> httpx.Client:
        """A client that sends no token."""
        if self.app is not None:
            kwargs["transport"] = self.app.transport
        return httpx.Client(base_url=self.api, timeout=60, **kwargs)

    def raw_request(
        self, method: str, raw_path: str, body: bytes | None = None, *, token: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """A request whose path goes out byte for byte as written (no client-side normalisation)."""
        headers = {"authorization": f"Bearer {token or self.token}"}
        if body is not None:
            headers["content-type"] = "text/plain"
        if self.app is not None:
            raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
            return self.app.raw(method, raw_path.encode("latin-1"), raw_headers, body or b"")
        parsed = urlparse(self.base_url)
        conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
        try:
            conn.request(method, raw_path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()


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


def apps_on(combo: str, backends: Backends, factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app on one engine combination, in this process (the fast API tier)."""
    data_dir = factory.mktemp(combo.replace("+", "-")) / "data"
    settings = backends.settings(
        combo, data_dir, token=TOKEN, rate_limit=False, log_level="warning", public_url=IN_PROCESS_URL
    )
    app = InProcessApp(settings)
    try:
        app.bootstrap(TOKEN)
        yield Server(IN_PROCESS_URL, TOKEN, data_dir, app=app)
    finally:
        app.close()


def every_engine(*, in_process: bool = False) -> Any:
    """A module-scoped `server` fixture that runs the module once on each engine combination: servers on
    loopback, or (`in_process`) the app in the test process.

    Use it as `server = every_engine()` at a test module's top level.
    """

    @pytest.fixture(scope="module", params=COMBOS, name="server")
    def server_on_each(
        request: pytest.FixtureRequest, backends: Backends, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Server]:
        start = apps_on if in_process else servers_on
        yield from start(request.param, backends, tmp_path_factory)

    return server_on_each


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
