"""Housekeeping every engine needs: blobs of replaced, deleted or abandoned records go after a grace.

Safe with any number of processes and nodes doing it at once: deleting a blob twice is harmless, and a name
is forgotten only after its blob is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from satchel.clock import now_ms
from satchel.errors import StorageFull, Unavailable
from satchel.logs import Occasional
from satchel.storage.base import RecordTable
from satchel.storage.blobs.base import BlobStore

log = logging.getLogger(__name__)
BATCH = 1000
# An upload not committed after this long is abandoned: its process died or lost its database. (A commit
# after that finds its upload forgotten and fails rather than name a blob that is gone.)
UPLOAD_MAX_AGE_MS = 6 * 3600 * 1000


class BlobHousekeeping:
    def __init__(self, records: RecordTable, blobs: BlobStore, *, grace_ms: int) -> None:
        self.records = records
        self.blobs = blobs
        self.grace_ms = grace_ms

    async def purge(self) -> int:
        """Remove dead blobs past their grace and abandoned uploads; returns how many went."""
        now = now_ms()
        gone = 0
        while True:
            names = await self.records.dead_blobs(now - self.grace_ms, BATCH)
            names += await self.records.abandoned_uploads(now - UPLOAD_MAX_AGE_MS, BATCH)
            if not names:
                return gone
            await self.blobs.delete(names)
            await self.records.forget_blobs(names)
            gone += len(names)
            if len(names) < BATCH:
                return gone


class Background:
    """Tasks that live as long as their owner is open, cancelled and awaited together on close."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, job: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.create_task(job))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()


async def every(seconds: float, job: Callable[[], Awaitable[object]], *, first: float | None = None) -> None:
    """Run a housekeeping job forever; a failure is logged and the job tried again on its next tick."""
    await asyncio.sleep(seconds if first is None else first)
    waiting = Occasional(log, 60.0)  # a full disk lasts: said once a minute, not at every tick
    # A backend that does not answer: the outage the pool and the requests' 503s already tell of. With its
    # traceback it was 40 lines a second per process, then one a second per job and process (120 lines per
    # node in a 20 s outage of PostgreSQL).
    down = Occasional(log, 30.0)
    while True:
        try:
            await job()
        except StorageFull:  # retried once deletes have made room
            waiting.log(
                logging.WARNING, "housekeeping waits for disk space: %s", getattr(job, "__name__", job)
            )
        except Unavailable as exc:  # retried on the next tick
            name = getattr(job, "__name__", job)
            down.log(logging.WARNING, "housekeeping waits: %s: %s", name, exc.message)
        except Exception:
            log.exception("housekeeping failed: %s", getattr(job, "__name__", job))
        await asyncio.sleep(seconds)
