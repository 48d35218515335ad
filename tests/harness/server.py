"""A Satchel to test against: a `satchel serve` process on loopback (as a user starts it), or the app in this
process; the suite's fixtures in tests/conftest.py are made from these."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from tests.harness.cli import cli_command
from tests.harness.inprocess import InProcessApp

TOKEN = "apify_api_" + "t" * 36

# One TLS context for every client made here. They speak plain HTTP to loopback, but httpx builds a context
# per client unless given one, loading the whole CA bundle each time: about 70 ms of CPU on a loaded host,
# which made each server's readiness poll busy for seconds and was a third of the test processes' CPU.
TLS = ssl.create_default_context()


@dataclass
class Server:
    """A Satchel to test against: a `satchel serve` process on loopback, or the app in this process."""

    base_url: str  # http://127.0.0.1:PORT (no /v2)
    token: str
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    app: InProcessApp | None = None

    @property
    def pid(self) -> int:
        """The `satchel serve` process's id, which is also its process group's."""
        assert self.process is not None, "an in-process app has no process"
        return self.process.pid

    @property
    def api(self) -> str:
        return self.base_url + "/v2"

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        return self.anonymous(headers={"authorization": f"Bearer {token or self.token}"}, **kwargs)

    def anonymous(self, *, timeout: float = 60, **kwargs: Any) -> httpx.Client:
        """A client that sends no token."""
        if self.app is not None:
            kwargs["transport"] = self.app.transport
        return httpx.Client(base_url=self.api, timeout=timeout, verify=TLS, **kwargs)

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


def client_from(address: str) -> httpx.Client:
    """A client whose connections leave from this loopback address (127.0.0.2, ...): another client to the
    server's per-address limits."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address, verify=TLS), timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path,
    *,
    token: str = TOKEN,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    port: int | None = None,
) -> Server:
    """A server on loopback, on a free port or (`port`) on that one, as one started again after a stop."""
    port = port or free_port()
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
            cli_command("serve", "--port", str(port), *args, data_dir=data_dir),
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a kill reaches the workers too
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=1, verify=TLS) as poll:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {(data_dir.parent / f'server-{port}.log').read_text()}")
            try:
                poll.get(base + "/v2/users/me", headers={"authorization": f"Bearer {token}"} if token else {})
                return Server(base, token, data_dir, process)
            except httpx.TransportError:
                time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start within 30 s")


def stop_server(server: Server, *, kill: bool = False) -> None:
    process = server.process
    assert process is not None, "an in-process app is closed, not stopped"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
