"""What happens to a request body an error answered before reading.

Closing a connection with unread bytes in its receive buffer makes the kernel send a reset, and a reset that
overtakes the answer loses it: a client sending a small body in chunks with a bad token saw ECONNRESET instead
of the 401 most times. So a small remainder is read and dropped before answering (the connection then stays
usable); a large or endless one, or one refused for its size, is not waited for, and the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from starlette.responses import Response
from starlette.types import Message, Receive, Scope

from satchel.api.http import declares_body
from satchel.api.pauses import Pauses

DRAIN_BYTES = 1024 * 1024  # most a refusal reads and drops
DRAIN_SECONDS = 2.0  # longest it waits for that
# Refused for its size, or for a client too slow to send it: reading on is what the refusal is there to avoid.
NOT_DRAINED = frozenset((408, 413))


class BodyWatch:
    """The request's receive, noting when the body has been read to its end (or the client left) and how many
    of its bytes have been (for the request's log line and metrics); with `pauses`, a body that ends after a
    pause of the process that began while it was read is refused (pauses.py)."""

    __slots__ = ("ended", "pauses", "read", "receive", "since")

    def __init__(self, receive: Receive, pauses: Pauses | None = None) -> None:
        self.receive = receive
        self.ended = False
        self.read = 0
        self.pauses = pauses
        self.since = time.monotonic() if pauses is not None else 0.0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] != "http.request":
            self.ended = True
            return message
        self.read += len(message.get("body", b""))
        if not message.get("more_body", False):
            self.ended = True
            if self.pauses is not None:
                self.pauses.check(self.since)
        return message


def body_watch(scope: Scope, receive: Receive, pauses: Pauses | None = None) -> BodyWatch | None:
    """A watch when the request has a body, else None (no cost for the GETs)."""
    return BodyWatch(receive, pauses) if declares_body(scope) else None


async def settle(response: Response, scope: Scope, watch: BodyWatch | None) -> Response:
    """The error answer, after dropping a small unread remainder of the body, or marked to close."""
    if watch is None or watch.ended:
        return response
    watch.pauses = None  # the request is refused already: its body is only dropped
    if response.status_code not in NOT_DRAINED and _declared(scope) <= DRAIN_BYTES:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_drain(watch), DRAIN_SECONDS)
        if watch.ended:
            return response
    # The rest of the body is still on its way, so the connection cannot carry another request: say so, or
    # the client sends its next request on a connection the server is about to drop.
    response.headers["connection"] = "close"
    return response


async def _drain(watch: BodyWatch) -> None:
    start = watch.read
    while not watch.ended and watch.read - start <= DRAIN_BYTES:
        await watch()


def _declared(scope: Scope) -> int:
    """The declared length, 0 for a chunked body (whose size shows only as it is read)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return DRAIN_BYTES + 1
    return 0
