"""The API tier without a subprocess: Satchel's ASGI app on an event loop thread of the test process.

httpx clients reach it through a transport that hands each request to the app (httpx's own ASGITransport,
run on the app's loop), so tests written for a server on loopback run unchanged and several times faster.
Responses arrive whole, so what only a socket shows (streaming, connection handling, crashes) stays with the
subprocess servers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from satchel.server import create_app
from satchel.settings import Settings

T = TypeVar("T")
BASE_URL = "http://satchel.test"
TIMEOUT = 60.0
IN_PROCESS_PAUSE_SECONDS = 30.0


class InProcessApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="satchel-app", daemon=True)
        self._thread.start()
        self.app = create_app(settings)
        # The app's loop shares this process and its GIL with the tests: a gap in its ticks here is the tests'
        # own load, not a pause of the server, which the subprocess tier tests (test_pauses.py).
        self.app.pauses.seconds = IN_PROCESS_PAUSE_SECONDS
        self.run(self.app.startup())
        self.transport = _Bridge(self)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the app's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT)

    def bootstrap(self, token: str) -> None:
        """What `satchel serve` does before it serves: the admin and their token."""
        users = self.app.services.users
        self.run(users.ensure_admin(self.settings.admin_username, self.settings.data_dir, token))

    def raw(
        self, method: str, raw_path: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """One request with its path exactly as given (no client-side normalisation)."""
        path, _, query = raw_path.partition(b"?")
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path.decode("latin-1"), "raw_path": raw_path, "query_string": query,
            "headers": [(b"host", b"satchel.test"), *headers], "client": ("127.0.0.1", 50000),
            "server": ("satchel.test", 80), "root_path": "",
        }  # fmt: skip
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        self.run(self.app(scope, receive, send))  # type: ignore[arg-type]
        start = sent[0]
        out = {k.decode().lower(): v.decode("latin-1") for k, v in start["headers"]}
        return start["status"], out, b"".join(m.get("body", b"") for m in sent[1:])

    def close(self) -> None:
        self.run(self.app.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _Bridge(httpx.BaseTransport):
    """A sync httpx transport that runs each request through httpx's ASGITransport on the app's loop."""

    def __init__(self, app: InProcessApp) -> None:
        self.app = app
        self.asgi = httpx.ASGITransport(app=app.app, client=("127.0.0.1", 50000))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self.asgi.handle_async_request(inner)
            raw = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
            return response.status_code, response.headers.raw, raw

        status, headers, raw = self.app.run(send())
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(raw), request=request)
