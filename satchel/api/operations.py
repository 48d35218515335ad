"""What operators and their tools ask a server, outside /v2: is it alive, can it serve, what is it doing.

- `/health`: the process answers (200 `{"status": "ok"}`); nothing else is asked, so a load balancer or
  supervisor restarts only a process that is truly stuck.
- `/ready`: its engines answer too: the metadata database (one indexed lookup) and the blob store (a look
  for a blob that is not there), each under a short timeout; 200 when both do, else 503 naming the one
  that did not, so a load balancer sends no traffic to a node cut off from its database or object store.
- `/metrics`: Prometheus's text format (metrics.py); open like the others unless `metrics_admin_only`.

None needs a token (but /metrics may) and none is rate-limited: a probe must never be refused for probing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from satchel.api.errors import error_response, from_error
from satchel.api.http import bearer_token
from satchel.errors import Forbidden, SatchelError, Unauthorized
from satchel.metrics import CONTENT_TYPE, Metrics
from satchel.service.services import Services
from satchel.storage.blobs.base import BlobMissing

log = logging.getLogger(__name__)
READY_TIMEOUT = 2.0  # seconds each engine has to answer /ready
# A blob name no record ever has (records' blobs are named by hex digests): asking for it costs one lookup.
PROBE_BLOB = "ready-probe"
PATHS = frozenset(("/health", "/ready", "/metrics"))
NO_STORE = {"cache-control": "no-store"}


class Operations:
    def __init__(self, services: Services, metrics: Metrics | None) -> None:
        self.services = services
        self.metrics = metrics
        self.admin_only = services.settings.metrics_admin_only
        self._answers: dict[str, Callable[[Scope], Awaitable[Response]]] = {
            "/health": self._health,
            "/ready": self._ready,
            "/metrics": self._metrics,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        head = scope["method"] == "HEAD"
        if scope["method"] not in ("GET", "HEAD"):
            response = error_response(
                405, "method-not-allowed", "This endpoint answers GET and HEAD only.", head=head
            )
            response.headers["allow"] = "GET, HEAD"
        else:
            try:
                response = await self._answers[scope["path"]](scope)
            except SatchelError as error:
                response = from_error(error, head=head)
            if head:
                response = Response(b"", response.status_code, headers=dict(response.headers))
        await response(scope, receive, send)

    async def _health(self, scope: Scope) -> Response:
        return _json(200, {"status": "ok"})

    async def _ready(self, scope: Scope) -> Response:
        checks = {"database": self._database(), "blobStore": self._blob_store()}
        results = await asyncio.gather(*(_timed(name, check) for name, check in checks.items()))
        failed = {name: problem for name, problem in results if problem}
        if failed:
            return _json(503, {"status": "unavailable", "failed": failed})
        return _json(200, {"status": "ok"})

    async def _database(self) -> None:
        await self.services.storage.users.by_id("")

    async def _blob_store(self) -> None:
        blobs = self.services.storage.blobs
        local = blobs.local_path(PROBE_BLOB)
        if local is not None:  # files: the folder is there (a volume that went away is not)
            root = local.parent.parent
            if not await asyncio.to_thread(root.is_dir):
                raise OSError(f"the blob folder {root} is missing")
            return
        try:
            async for _ in blobs.read(PROBE_BLOB):
                break
        except BlobMissing:  # the store answered: that is all that was asked
            pass

    async def _metrics(self, scope: Scope) -> Response:
        if self.metrics is None:
            return error_response(404, "page-not-found", "Metrics are off (the `metrics` setting).")
        if self.admin_only:
            await self._check_admin(scope)
        body = await self.metrics.render()
        return Response(body, 200, media_type=CONTENT_TYPE, headers=NO_STORE)

    async def _check_admin(self, scope: Scope) -> None:
        token = bearer_token(scope, _query_token(scope))
        if not token:
            raise Unauthorized("Metrics are for the admin: send the admin's token.")
        caller = await self.services.users.authenticate(token)
        if caller.user is None or caller.user.username != self.services.settings.admin_username:
            raise Forbidden("Metrics are for the admin: this token is another user's.")


def _query_token(scope: Scope) -> dict[str, str]:
    for part in scope["query_string"].split(b"&"):
        if part.startswith(b"token="):
            return {"token": part[6:].decode("latin-1")}
    return {}


async def _timed(name: str, check: Awaitable[None]) -> tuple[str, str]:
    """Run an engine's check; what went wrong, or "" when it answered in time.

    The answer does not wait for a check that ran out of time to finish cancelling: a driver may spend its
    own timeout on that (asyncpg asks an unreachable server to cancel the query: about 10 s more).
    """
    task = asyncio.ensure_future(check)
    done, _ = await asyncio.wait({task}, timeout=READY_TIMEOUT)
    if not done:
        task.cancel()
        task.add_done_callback(_forget)
        return name, f"no answer within {READY_TIMEOUT:g} s"
    error = task.exception()
    if error is not None:
        log.warning("readiness check of the %s failed: %s", name, error)
        return name, str(error) or type(error).__name__
    return name, ""


def _forget(task: asyncio.Future[None]) -> None:
    """A check given up on: its outcome, read so that asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()


def _json(status: int, data: object) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json", headers=NO_STORE)
