"""Rate limits as the hosted API states them: per resource per second, and global per user (or IP) per minute.

Counters live in the `limits` library's storage: in process memory by default, or in Redis so that several
server processes or nodes share them. Fixed windows: the cheapest check, at the cost of allowing up to twice
the rate across one window boundary.

Over a per-resource limit, a request is shaped before it is refused, as nginx's limit_req does with a burst
queue: it waits (up to `rate_limit_wait_seconds`) for the next window, and gets 429 only when that wait would
be too long or a second's worth of requests to the resource is already waiting. So a client uploading in
parallel is slowed to the limit instead of failing; one flooding a store is still refused.

When the shared counters do not answer (Redis is down, or stalled: see counters.py), requests go through
uncounted, with a warning in the log: an outage of an optional helper must not take the API down with it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable

from limits import RateLimitItemPerMinute, RateLimitItemPerSecond

from satchel.counters import Counters
from satchel.errors import RateLimited
from satchel.logs import Occasional
from satchel.settings import Settings

log = logging.getLogger(__name__)
WARN_EVERY_SECONDS = 10.0


class RateLimits:
    def __init__(self, settings: Settings, *, on_reject: Callable[[str], None] | None = None) -> None:
        self.enabled = settings.rate_limit
        self.on_reject = on_reject  # told of each refusal, with the limit's kind (resource or global)
        self.per_resource = settings.rate_limit_per_second
        self.per_record = settings.rate_limit_records_per_second
        self._items = {
            self.per_resource: RateLimitItemPerSecond(self.per_resource),
            self.per_record: RateLimitItemPerSecond(self.per_record),
        }
        self._global = RateLimitItemPerMinute(settings.rate_limit_global_per_minute)
        self._limiter = Counters(settings.rate_limit_storage)
        self._counters_down = Occasional(log, WARN_EVERY_SECONDS)
        self.max_wait = settings.rate_limit_wait_seconds
        self._waiting: dict[str, int] = {}  # per resource: requests waiting for a slot in this process

    def limit(self, *, record: bool) -> int:
        """The per-resource limit of an endpoint, as X-RateLimit-Limit tells it."""
        return self.per_record if record else self.per_resource

    async def hit(self, *, who: str, resource: str, record: bool) -> None:
        """Count one request by `who` (a user id or an IP) on `resource`; refuse it when over a limit."""
        if not self.enabled:
            return
        limit = self.limit(record=record)
        try:
            within = await self._shaped(self._items[limit], resource, limit)
            within_global = within and await self._limiter.hit(self._global, "global", who)
        except Exception as exc:  # the counters' storage failed: let the request through, uncounted
            self._counters_down.log(
                logging.WARNING, "rate-limit counters do not answer (%s); requests go through uncounted", exc
            )
            return
        if not within:
            if self.on_reject:
                self.on_reject("resource")
            raise RateLimited(f"You have exceeded the rate limit of {limit} requests per second.")
        if not within_global:
            if self.on_reject:
                self.on_reject("global")
            raise RateLimited(
                f"You have exceeded the global rate limit of {self._global.amount} requests per minute.",
                retry_after=await self._global_reset(who),
            )

    async def _global_reset(self, who: str) -> int:
        """Whole seconds until `who`'s minute window of the global limit starts over (at least 1)."""
        try:
            stats = await self._limiter.window_stats(self._global, "global", who)
        except Exception:  # the counters went away meanwhile: a minute is the longest it can be
            return self._global.get_expiry()
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def _shaped(self, item: RateLimitItemPerSecond, resource: str, limit: int) -> bool:
        """Take a slot of the resource's window, waiting for a later window while that is allowed."""
        deadline = time.monotonic() + self.max_wait
        while True:
            # Each window is one second of the clock, named in the counter's key, so when the next one opens
            # is known here to the millisecond. Asking the counters instead fails over Redis: it tells a
            # key's expiry in whole seconds (TTL), so every wait looked a whole second long, past the default
            # rate_limit_wait_seconds, and no request over a limit was ever held back, only refused.
            window = math.floor(time.time())
            if await self._limiter.hit(item, "resource", resource, str(window)):
                return True
            waiting = self._waiting.get(resource, 0)
            if waiting >= limit:
                return False
            wait = max(window + 1 - time.time(), 0.0)
            if time.monotonic() + wait > deadline:
                return False
            # Woken a little apart, so the waiters do not all race for the new window at one instant.
            wait += random.uniform(0.001, 0.02)
            self._waiting[resource] = waiting + 1
            try:
                await asyncio.sleep(wait)
            finally:
                left = self._waiting[resource] - 1
                if left:
                    self._waiting[resource] = left
                else:
                    del self._waiting[resource]
