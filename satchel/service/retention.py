"""Retention: unnamed stores go once unused for the retention period; named ones stay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from satchel.clock import now_ms
from satchel.errors import StorageFull, Unavailable
from satchel.service.lookups import Lookups
from satchel.service.usage import Usage
from satchel.storage import StoreTable

log = logging.getLogger(__name__)
BATCH = 500


class Retention:
    def __init__(
        self,
        stores: StoreTable,
        usage: Usage,
        lookups: Lookups,
        *,
        retention_seconds: int,
        interval_seconds: float,
    ) -> None:
        self.stores = stores
        self.usage = usage
        self.lookups = lookups
        self.retention_ms = retention_seconds * 1000
        self.interval = interval_seconds
        # Told of each run of the sweeper: the stores it deleted, or None when it failed (for /metrics).
        self.on_sweep: Callable[[int | None], None] | None = None

    async def sweep(self) -> int:
        """Delete every expired store with its records (their blobs follow after a grace period).

        Safe when every node sweeps: each delete re-checks the store's last use in its own transaction, so a
        store used after it was chosen is kept, and a store another node deleted first counts once.
        """
        await self.usage.flush()  # this process's recent reads count as use
        cutoff = now_ms() - self.retention_ms
        deleted = 0
        while expired := await self.stores.expired(cutoff, BATCH):
            for pk in expired:
                if await self.stores.delete(pk, unused_since=cutoff):
                    self.usage.drop(pk)
                    deleted += 1
            if len(expired) < BATCH:
                break
        if deleted:
            await self.lookups.changed()
            log.info("retention: deleted %d expired unnamed stores", deleted)
        return deleted

    async def run_forever(self) -> None:
        while True:
            deleted: int | None = None
            try:
                deleted = await self.sweep()
            except (StorageFull, Unavailable) as exc:  # a full disk, a backend away: a line, not a traceback
                log.warning("retention sweep waits: %s", exc.message)
            except Exception:  # tried again next interval
                log.exception("retention sweep failed")
            if self.on_sweep:
                self.on_sweep(deleted)
            await asyncio.sleep(self.interval)
