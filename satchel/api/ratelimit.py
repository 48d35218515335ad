"""Rate limits as the hosted API states them: per resource per second, and global per user (or IP) per minute.

Counters live in the `limits` library's storage: in process memory by default, or in Redis so that several
server processes or nodes share them. Fixed windows: the cheapest check, at the cost of allowing up to twice
the rate across one window boundary.

When the shared counters do not answer (Redis is down), requests go through uncounted, with a warning in the
log: an outage of an optional helper must not take the API down with it.
"""

from __future__ import annotations

import logging
import time

from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from satchel.errors import RateLimited
from satchel.settings import Settings

log = logging.getLogger(__name__)
WARN_EVERY_SECONDS = 10.0


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit
        self.per_resource = settings.rate_limit_per_second
        self.per_record = settings.rate_limit_records_per_second
        self._items = {
            self.per_resource: RateLimitItemPerSecond(self.per_resource),
            self.per_record: RateLimitItemPerSecond(self.per_record),
        }
        self._global = RateLimitItemPerMinute(settings.rate_limit_global_per_minute)
        uri = settings.rate_limit_storage
        storage = storage_from_string(uri if uri.startswith("async+") else f"async+{uri}")
        self._limiter = FixedWindowRateLimiter(storage)
        self._warned_at = -WARN_EVERY_SECONDS

    def limit(self, *, record: bool) -> int:
        """The per-resource limit of an endpoint, as X-RateLimit-Limit tells it."""
        return self.per_record if record else self.per_resource

    async def hit(self, *, who: str, resource: str, record: bool) -> None:
        """Count one request by `who` (a user id or an IP) on `resource`; refuse it when over a limit."""
        if not self.enabled:
            return
        limit = self.limit(record=record)
        try:
            within = await self._limiter.hit(self._items[limit], "resource", resource)
            within_global = within and await self._limiter.hit(self._global, "global", who)
        except Exception as exc:  # the counters' storage failed: let the request through, uncounted
            now = time.monotonic()
            if now - self._warned_at > WARN_EVERY_SECONDS:
                self._warned_at = now
                log.warning("rate-limit counters do not answer (%s); requests go through uncounted", exc)
            return
        if not within:
            raise RateLimited(f"You have exceeded the rate limit of {limit} requests per second.")
        if not within_global:
            raise RateLimited(
                f"You have exceeded the global rate limit of {self._global.amount} requests per minute."
            )
