"""Retention: unnamed stores go once unused for the retention period; named ones stay."""

from __future__ import annotations

import asyncio
import logging

from satchel.clock import now_ms
from satchel.storage import Engine

log = logging.getLogger(__name__)


class Retention:
    def __init__(self, engine: Engine, *, retention_seconds: int, interval_seconds: float) -> None:
        self.engine = engine
        self.retention_ms = retention_seconds * 1000
        self.interval = interval_seconds

    async def sweep(self) -> int:
        """Delete every expired store with its records (their blob files follow after a grace period)."""
        expired = await self.engine.expired_stores(now_ms() - self.retention_ms)
        for pk in expired:
            await self.engine.delete_store(pk)
        if expired:
            log.info("retention: deleted %d expired unnamed stores", len(expired))
        return len(expired)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # tried again next interval
                log.exception("retention sweep failed")
            await asyncio.sleep(self.interval)
