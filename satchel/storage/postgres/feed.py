"""The change feed across nodes: PostgreSQL LISTEN/NOTIFY on channel satchel_changes.

One dedicated connection listens; each notification moves the stamp. While that connection is down, no
notification can be trusted to arrive, so stamp() gives a new value on every call (nothing is cached), and a
background task reconnects with backoff and moves the stamp once it listens again. A second connection
publishes (NOTIFY is delivered to listeners on other connections, this node's included).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging

import asyncpg

from satchel.errors import Unavailable
from satchel.storage.postgres.db import DOWN_MESSAGE, is_down

log = logging.getLogger(__name__)
CHANNEL = "satchel_changes"
TIMEOUT = 5.0  # to connect, and for a keepalive or a publish to answer
# A silent connection (a server gone without closing its sockets) is found by a query this often.
KEEPALIVE_SECONDS = 10.0
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 5.0


class PostgresFeed:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._counter = itertools.count()
        self._stamp = next(self._counter)
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self._publisher: asyncpg.Connection[asyncpg.Record] | None = None
        self._publish_lock = asyncio.Lock()

    def stamp(self) -> int:
        if not self._listening:
            return next(self._counter)
        return self._stamp

    def _moved(self, *_: object) -> None:
        self._stamp = next(self._counter)

    async def open(self) -> None:
        if self._task is None:
            tried = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._listen(tried), name="satchel-postgres-feed")
            # Wait for the first try only: with the database down the start goes on, the task keeps trying,
            # and stamp() lets nothing be cached until it listens.
            await asyncio.wait([tried], timeout=TIMEOUT * 2)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._publisher is not None:
            publisher, self._publisher = self._publisher, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(publisher.close(), TIMEOUT)
            publisher.terminate()

    async def _listen(self, tried: asyncio.Future[None]) -> None:
        backoff = BACKOFF_FIRST
        while True:
            conn: asyncpg.Connection[asyncpg.Record] | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=TIMEOUT)
                lost = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set, lost))
                await conn.add_listener(CHANNEL, self._moved)
                self._moved()  # changes published while nobody listened are unknown
                self._listening = True
                _done(tried)
                if backoff > BACKOFF_FIRST:
                    log.warning("change feed: listening again")
                backoff = BACKOFF_FIRST
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=TIMEOUT)  # silence is no proof of life
            except Exception as exc:  # any failure: the notifications may have stopped
                if not is_down(exc):
                    log.exception("change feed: listening failed")
            finally:
                self._listening = False
                _done(tried)
                if conn is not None:
                    conn.terminate()
            if backoff == BACKOFF_FIRST:
                log.warning("change feed: lost the database; caches are off until it is back")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def publish(self) -> None:
        async with self._publish_lock:
            reused = self._publisher is not None and not self._publisher.is_closed()
            try:
                await self._notify()
            except Exception as exc:
                if not is_down(exc):
                    raise
                if not reused:
                    raise Unavailable(DOWN_MESSAGE) from exc
                # The connection may have died with a restart since the last publish: one more try, fresh.
                try:
                    await self._notify()
                except Exception as again:
                    if is_down(again):
                        raise Unavailable(DOWN_MESSAGE) from again
                    raise
        self._moved()  # this node's caches at once, not when the notification comes back

    async def _notify(self) -> None:
        try:
            if self._publisher is None or self._publisher.is_closed():
                self._publisher = await asyncpg.connect(self.dsn, timeout=TIMEOUT)
            await self._publisher.execute(f"NOTIFY {CHANNEL}", timeout=TIMEOUT)
        except BaseException:
            if self._publisher is not None:
                self._publisher.terminate()
                self._publisher = None
            raise


def _set(event: asyncio.Event, *_: object) -> None:
    event.set()


def _done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
