"""Keeping a server process's connections for the clients that use them: what granian cannot do itself.

granian closes a connection that takes too long over its request's headers, or sits idle between requests
(`header_timeout_seconds`, see serving.py), and holds at most a fixed number of connections per process.
Two things are left to this guard, which wraps the app in every worker process:

- A body that stops arriving. hyper has no timeout for it, so a PUT whose Content-Length promises bytes that
  never come held its connection and its request for as long as the client liked. Each wait for the next
  piece of a body is timed (`body_timeout_seconds`); past it the read raises BodyTimeout, which the API
  answers with 408 and `Connection: close`, and the Console with its error page. Only the body is timed:
  once it has arrived, waits on `receive` are Starlette listening for a disconnect while it streams an
  answer, which may take as long as the download does. A request that declares no body is not wrapped at
  all. One timer per process looks over the waits in progress (BodyClock) instead of a timer per wait
  (asyncio.timeout cost 3.5 us a wait, a sixth of a cached GET's whole cost); so a stalled body is cut
  between its timeout and a quarter of it (at most a second) later.
- The cap. At its cap granian accepts nothing more, and whoever comes next waits in the listen queue until a
  connection closes. Before the cap is reached, the connections that wait longest on their client (idle
  between requests, never sent a request, or stalled in the middle of a body) are closed, most silent
  first, so the cap is never reached by connections that do nothing; one whose request the server is working
  on is never closed. A thread looks every half second: counting open files is cheap; only near the cap does
  it look at each socket (TCP_INFO says how long since the client sent or was sent anything) and shut the
  chosen ones down, which granian sees as the client closing. Measured: 12,000 idle connections against a
  cap of 9,872 (an open-file limit of 20,000): a normal client was answered in 53 ms; the first look closed
  1,974 of them in one go. With the cap at 200 and 2,000 idle, the first request waited 2 s behind the 1,800
  queued before it, the next ones 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel.api.http import declares_body
from satchel.errors import BodyTimeout
from satchel.settings import Settings

log = logging.getLogger("satchel.connections")
FDS = "/proc/self/fd"
LOOK_EVERY = 0.5  # seconds
# After closing some: more are likely queued behind them, and are accepted as soon as there is room.
LOOK_AGAIN = 0.02  # seconds
LOG_EVERY = 60.0  # seconds: how often shedding is reported, at most
BODY_LOOK_MAX = 1.0  # seconds: the longest between two looks over the bodies waited for
# struct tcp_info (linux/tcp.h): milliseconds since data was last sent, and last received, on the connection.
TCP_INFO_LAST_DATA_SENT = 44
TCP_INFO_LAST_DATA_RECV = 52
TCP_INFO_BYTES = 104

Peer = tuple[str, str]  # (address, port) as the ASGI scope's `client` gives them


class ConnectionGuard:
    """The app, with request bodies timed and the connections that wait on their client shed near the cap."""

    def __init__(self, app: ASGIApp, settings: Settings, *, cap: int) -> None:
        self.app = app
        # Its HTTP entry when it has one (Satchel's app does), called directly: a frame fewer per request.
        self.http: ASGIApp = getattr(app, "http", app)
        self.body_timeout = settings.body_timeout_seconds
        self.cap = cap
        margin = max(8, cap // 10)
        self.high = cap - margin  # shed once this many connections are open...
        self.low = cap - 2 * margin  # ...down to this many
        # Connections whose request the server is working on: never shed. A request waiting for its body is
        # not among them while it waits, since then it is the client that keeps it.
        self.working: set[Peer] = set()
        self.clock = BodyClock(settings.body_timeout_seconds)
        self.shed_total = 0
        self._shed_logged = 0
        self._logged_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer = (str(client[0]), str(client[1])) if client else ("", "")
        self.working.add(peer)
        if not declares_body(scope):
            try:
                await self.http(scope, receive, send)
            finally:
                self.working.discard(peer)
            return
        body = _TimedBody(receive, self, peer)
        try:
            await self.http(scope, body, send)
        finally:
            body.active = False
            self.working.discard(peer)

    # --- shedding, on a thread of its own

    def start_shedding(self) -> threading.Thread:
        thread = threading.Thread(target=self._shed_forever, name="satchel-shed", daemon=True)
        thread.start()
        return thread

    def _shed_forever(self) -> None:
        pause = LOOK_EVERY
        while True:
            time.sleep(pause)
            try:
                pause = LOOK_AGAIN if self.shed() else LOOK_EVERY
            except Exception:  # never let the thread die: the next look may do better
                log.exception("looking over connections failed")
                pause = LOOK_EVERY

    def shed(self) -> int:
        """Close connections that wait on their client, most silent first, if this process holds too many;
        the number closed."""
        try:
            if len(os.listdir(FDS)) < self.high:  # cheap: open files are at least the connections
                return 0
        except OSError:
            return 0
        listening: set[int] = set()
        connected = []  # (local port, ms silent or -1 while the server works on it, fd, inode)
        for fd, inode in _sockets():
            with _opened(fd, inode) as sock:
                if sock is None:
                    continue
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    listening.add(int(sock.getsockname()[1]))
                    continue
                quiet = self._quiet_ms(sock)
                if quiet is not None:
                    connected.append((int(sock.getsockname()[1]), quiet, fd, inode))
        # Only connections accepted by this process's listener: not its own to a database or object store.
        clients = [(quiet, fd, inode) for port, quiet, fd, inode in connected if port in listening]
        if len(clients) < self.high:
            return 0
        waiting = sorted((client for client in clients if client[0] >= 0), reverse=True)
        closed = sum(_shut_down(fd, inode) for _, fd, inode in waiting[: len(clients) - self.low])
        self._report(closed, len(clients))
        return closed

    def _quiet_ms(self, sock: socket.socket) -> int | None:
        """How long a connected socket has been silent (nothing sent either way), or -1 while the server
        works on its request; None if it is not connected."""
        try:
            peer = sock.getpeername()
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_BYTES)
        except OSError:
            return None
        if (str(peer[0]), str(peer[1])) in self.working:
            return -1
        sent = struct.unpack_from("I", info, TCP_INFO_LAST_DATA_SENT)[0]
        received = struct.unpack_from("I", info, TCP_INFO_LAST_DATA_RECV)[0]
        return int(min(sent, received))

    def _report(self, closed: int, count: int) -> None:
        self.shed_total += closed
        now = time.monotonic()
        if closed and now - self._logged_at >= LOG_EVERY:
            log.warning(
                "%d connections open, the limit is %d: closed %d waiting on their clients (%d since the last"
                " report)",
                count,
                self.cap,
                closed,
                self.shed_total - self._shed_logged,
            )
            self._logged_at = now
            self._shed_logged = self.shed_total


class BodyClock:
    """The waits for a next piece of a body, each with the time it must end by, looked over by one timer
    that runs only while some wait; a wait past its time is cancelled, and its read raises BodyTimeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.every = min(BODY_LOOK_MAX, timeout / 4)
        self.waiting: dict[_TimedBody, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._armed = False

    def wait(self, body: _TimedBody) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (a restarted app in tests): the old one's timer is gone
            self._loop, self._armed = loop, False
        self.waiting[body] = loop.time() + self.timeout
        if not self._armed:
            self._armed = True
            loop.call_later(self.every, self._look)

    def _look(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for body, deadline in list(self.waiting.items()):
            if deadline <= now:
                del self.waiting[body]
                body.expire()
        if self.waiting:
            self._loop.call_later(self.every, self._look)
        else:
            self._armed = False


class _TimedBody:
    """The request's `receive`, with each wait for the next piece of the body timed."""

    __slots__ = ("active", "done", "expired", "guard", "peer", "receive", "task")

    def __init__(self, receive: Receive, guard: ConnectionGuard, peer: Peer) -> None:
        self.receive = receive
        self.guard = guard
        self.peer = peer
        self.done = False  # the whole body has arrived (or the client has gone)
        self.active = True  # the request is still being answered
        self.expired = False  # the clock cancelled the wait
        self.task: asyncio.Task[Any] | None = None

    async def __call__(self) -> Message:
        if self.done:
            return await self.receive()
        guard = self.guard
        clock = guard.clock
        guard.working.discard(self.peer)
        self.task = asyncio.current_task()
        clock.wait(self)
        try:
            message = await self.receive()
        except asyncio.CancelledError:
            # The clock's cancel, unless the task was cancelled for another reason as well (the client left).
            if self.expired and self.task is not None and self.task.uncancel() == 0:
                self.done = True
                raise BodyTimeout(
                    f"The request body stopped arriving: nothing came for {clock.timeout:g} s."
                ) from None
            raise
        finally:
            clock.waiting.pop(self, None)
            if self.active:
                guard.working.add(self.peer)
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done = True
        return message

    def expire(self) -> None:
        self.expired = True
        if self.task is not None:
            self.task.cancel()


def _sockets() -> list[tuple[int, int]]:
    """This process's sockets: (fd, inode)."""
    found = []
    for name in os.listdir(FDS):
        try:
            target = os.readlink(f"{FDS}/{name}")
        except OSError:  # closed since the listing
            continue
        if target.startswith("socket:["):
            found.append((int(name), int(target[8:-1])))
    return found


@contextlib.contextmanager
def _opened(fd: int, inode: int) -> Iterator[socket.socket | None]:
    """A socket object on a duplicate of fd, if fd still is the TCP socket it was when listed (the number may
    have been closed and reused since); closing it leaves granian's own descriptor open and unchanged."""
    try:
        copy = os.dup(fd)
    except OSError:
        yield None
        return
    try:
        sock = socket.socket(fileno=copy) if os.fstat(copy).st_ino == inode else None
    except OSError:
        sock = None
    if sock is None:
        os.close(copy)
        yield None
        return
    with sock:
        ok = sock.type == socket.SOCK_STREAM and sock.family in (socket.AF_INET, socket.AF_INET6)
        yield sock if ok else None


def _shut_down(fd: int, inode: int) -> int:
    """Shut the connection down (granian reads the end of it and closes its side); 1 if it was."""
    with _opened(fd, inode) as sock:
        if sock is None:
            return 0
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
            return 1
    return 0
