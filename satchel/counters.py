"""Where the rate-limit counters live (the API's limits, failed Console sign-ins): `limits`' fixed windows in
process memory, or in Redis shared by every node, asked with a time limit.

The Redis client waits for an answer without end: a Redis that stopped answering (frozen, or cut off by the
network, so that nothing refuses the connection) held every API request for as long as it lasted, 50 s and
more, though counters that fail are meant to let requests through. So each question to a remote store gets
TIMEOUT_SECONDS, and after a failure the store is not asked again for PAUSE_SECONDS: a request meanwhile
fails over at once, instead of each waiting out the timeout (and the client's three retries logging three
lines). Memory needs neither, and gets no timer on its hot path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from limits import RateLimitItem
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from limits.util import WindowStats

T = TypeVar("T")
# A Redis round trip takes well under a millisecond near the nodes; a second is a Redis that is not there.
TIMEOUT_SECONDS = 1.0
PAUSE_SECONDS = 5.0


class CountersDown(Exception):
    """The counters did not answer, now or a moment ago."""


class Counters:
    def __init__(self, uri: str) -> None:
        self._limiter = FixedWindowRateLimiter(
            storage_from_string(uri if uri.startswith("async+") else f"async+{uri}")
        )
        self._remote = not uri.removeprefix("async+").startswith("memory://")
        self._down_until = 0.0

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        if not self._remote:  # every counted request asks this: no wrapper around memory
            return await self._limiter.hit(item, *identifiers)
        return await self._ask(self._limiter.hit, item, *identifiers)

    async def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        return await self._ask(self._limiter.test, item, *identifiers)

    async def window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        return await self._ask(self._limiter.get_window_stats, item, *identifiers)

    async def _ask(self, question: Callable[..., Awaitable[T]], *args: object) -> T:
        if not self._remote:
            return await question(*args)
        if time.monotonic() < self._down_until:
            raise CountersDown("they failed a moment ago; asked again shortly")
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                return await question(*args)
        except TimeoutError as exc:
            self._down_until = time.monotonic() + PAUSE_SECONDS
            raise CountersDown(f"no answer in {TIMEOUT_SECONDS:g} s") from exc
        except Exception:
            self._down_until = time.monotonic() + PAUSE_SECONDS
            raise
