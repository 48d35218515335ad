"""Writes that waited out a pause of this process are refused, not applied late.

A node that stops running for a while (SIGSTOP, a paused VM, a machine swapping hard) still has its
connections accepted by the kernel, and the load balancer and the clients give up on the requests waiting
there: they send them, or newer writes, to another node. When the node runs again it reads those requests as
if they were new, and a write applied then lands over what was acknowledged meanwhile (a probe saw a stale
PUT overwrite a newer acknowledged one, once in four tries). A pause shows as a gap in a timer the event loop
runs four times a second. A write is answered 503 (nothing stored, which clients retry) when it reaches the
app while such a gap is open or soon after one, or when its body ends after a pause that began while it was
being read.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from satchel.clock import PAUSE_SECONDS
from satchel.errors import Unavailable

log = logging.getLogger(__name__)
TICK_SECONDS = 0.25
AFTER_SECONDS = 2.0  # what reaches the app this soon after a pause may have waited through it
MESSAGE = (
    "This server did not run for a while, and the request may have waited through that: it was not applied,"
    " so that it cannot land over newer writes. Send it again."
)


class Pauses:
    def __init__(self, seconds: float = PAUSE_SECONDS) -> None:
        self.seconds = seconds  # a gap in the ticks this long is a pause
        self.ticked = time.monotonic()
        self.ended = -math.inf  # when the last pause ended
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.ticked = time.monotonic()
        self._timer = asyncio.get_running_loop().call_later(TICK_SECONDS, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self.ticked > self.seconds:
            self.ended = now
            log.warning(
                "this process did not run for %.1f s: writes that waited are refused", now - self.ticked
            )
        self.ticked = now
        self._timer = asyncio.get_running_loop().call_later(TICK_SECONDS, self._tick)

    def check(self, since: float = math.inf) -> None:
        """Refuse a write now, or one whose body began at `since` (monotonic), if a pause may have held it."""
        if self._timer is None:  # not serving (before startup, or stopping): nothing ticks to tell
            return
        now = time.monotonic()
        if now - self.ticked > self.seconds or now - self.ended < AFTER_SECONDS or self.ended > since:
            raise Unavailable(MESSAGE, retry_after=math.ceil(AFTER_SECONDS))
