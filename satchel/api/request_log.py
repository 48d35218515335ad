"""Around every HTTP request: its id, its line in the log, and its counts in the metrics.

The id comes from the proxy in front when it sent a sane `X-Request-Id` (so one id follows a request through
both logs), else it is made here; either way the answer carries it back in `X-Request-Id`. The route is the
template the app resolved the path to (`scope["satchel.route"]`), never the raw path, so the metrics' labels
stay few whatever paths are asked for; the user is the one the app authenticated (`scope["satchel.user"]`).

The API's own answers are observed by the app itself, which holds each one as a Response before sending it:
its status and, for a whole body, its length are read off it, and only a streamed answer has its sends
wrapped to be counted. The other parts (Console, docs, operations) send as they go, so they are wrapped
(`around`). Per request this costs a timer, an id and, when enabled, a few additions to per-process tallies
(metrics.py) and a line formatted and queued for the log's writer thread (logs.py; `request_log`, off by
default, 17 to 19 us more). Counted with valgrind over 3,000 GETs of 1 KiB records in process, the metrics
on: wrapping the API's requests too cost 24,500 instructions of a GET's 201,000; observing the Response
costs 15,000 of 191,600.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel.api.unread import BodyWatch, body_watch
from satchel.metrics import UNMATCHED, Metrics

log = logging.getLogger("satchel.request")
ID_HEADER = b"x-request-id"
# A proxy's id is kept when it is short and plain: no spaces, quotes or control characters to forge log lines
# or headers with.
SANE_ID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")
MAX_LOGGED_PATH = 1000
# The status logged and counted for a request the client left before any answer started (nginx's).
CLIENT_GONE = 499
ROUTE = "satchel.route"
USER = "satchel.user"


class Observed:
    """One request's figures, as they become known."""

    __slots__ = ("bytes_out", "request_id", "start", "status")

    def __init__(self, request_id: bytes) -> None:
        self.request_id = request_id
        self.start = time.perf_counter()
        self.status = 0
        self.bytes_out = 0


class RequestObserver:
    def __init__(self, metrics: Metrics | None, *, log_requests: bool) -> None:
        self.metrics = metrics
        self.log_requests = log_requests
        # New ids are this process's random prefix and a count: unique without a system call for random
        # bytes per request (os.urandom took 7 us here). Made in each worker process, after the fork.
        self._prefix = secrets.token_hex(4).encode()
        self._count = itertools.count(1)

    def begin(self, scope: Scope) -> Observed:
        return Observed(_incoming_id(scope["headers"]) or b"%s%08x" % (self._prefix, next(self._count)))

    def answering(self, seen: Observed, response: Response, send: Send) -> Send:
        """The send to give the response: the id goes on it, and its status and length into `seen`."""
        body = getattr(response, "body", None)
        if body is None:  # streamed, or a file the server sends: counted as it goes
            return _Sending(seen, send).send
        response.raw_headers.append((ID_HEADER, seen.request_id))
        seen.status = response.status_code
        seen.bytes_out = len(body)
        return send

    def around(self, app: ASGIApp) -> ASGIApp:
        """An app that sends its own answers, observed by wrapping its receive and send."""

        async def observed(scope: Scope, receive: Receive, send: Send) -> None:
            seen = self.begin(scope)
            watch = body_watch(scope, receive)  # counts the bytes in, if any are declared
            try:
                await app(scope, watch or receive, _Sending(seen, send).send)
            except Exception:
                # The app failed, perhaps before it answered: the server's error. (A cancellation is the
                # client going away: CLIENT_GONE, unless an answer had started.)
                seen.status = seen.status or 500
                raise
            finally:
                self.end(scope, seen, watch)

        return observed

    def end(self, scope: Scope, seen: Observed, watch: BodyWatch | None) -> None:
        """The request's line and counts, once its answer is sent (or given up)."""
        seconds = time.perf_counter() - seen.start
        route = scope.get(ROUTE, UNMATCHED)
        status = seen.status or CLIENT_GONE
        bytes_in = 0 if watch is None else watch.read
        if self.metrics is not None:
            self.metrics.request(route, scope["method"], status, seconds, bytes_in, seen.bytes_out)
        if self.log_requests and log.isEnabledFor(logging.INFO):
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
            # Undecoded and without the query (which may hold a token), so nothing in it can forge a line.
            path = raw_path.partition(b"?")[0][:MAX_LOGGED_PATH].decode("ascii", "backslashreplace")
            fields = {
                "method": scope["method"],
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "bytes_in": bytes_in,
                "bytes_out": seen.bytes_out,
                "request_id": seen.request_id.decode(),
                "user_id": scope.get(USER),
            }
            log.info("request", extra={"fields": fields})


class _Sending:
    """A send that notes the status, counts the body bytes and puts the id on the answer."""

    __slots__ = ("_send", "headers", "seen")

    def __init__(self, seen: Observed, send: Send) -> None:
        self.seen = seen
        self._send = send
        self.headers: list[tuple[bytes, bytes]] = []

    async def send(self, message: Message) -> None:
        kind = message["type"]
        seen = self.seen
        if kind == "http.response.body":
            seen.bytes_out += len(message.get("body", b""))
        elif kind == "http.response.start":
            seen.status = message["status"]
            self.headers = [*message.get("headers", ()), (ID_HEADER, seen.request_id)]
            message["headers"] = self.headers
        elif kind == "http.response.pathsend":  # a file sent by the server itself: its length was announced
            seen.bytes_out += next((int(v) for k, v in self.headers if k.lower() == b"content-length"), 0)
        await self._send(message)


def _incoming_id(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == ID_HEADER:
            return value if SANE_ID.fullmatch(value) else None
    return None
