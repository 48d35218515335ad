"""The change feed across nodes: PostgreSQL LISTEN/NOTIFY on channel satchel_changes.

One dedicated connection listens; each notification moves the stamp. While that connection is down, no
notification can be trusted to arrive, so stamp() gives a new value on every call (nothing is cached), and a
background task reconnects with backoff and moves the stamp once it listens again. A second connection
publishes (NOTIFY is delivered to listeners on other connections, this node's included).

A notification reaches each node when that node's database backend and event loop get to it, which on a busy
machine can be tens of milliseconds after the change was answered: a client told "done" could still meet the
old state on another node. So every listener answers each notification (channel satchel_changes_heard, once
its stamp has moved), and publish() returns once every listener counted when it notified has answered, or
after HEARD_SECONDS. A change is then in force on every node by the time its caller hears of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import secrets
from dataclasses import dataclass, field

import asyncpg

from satchel.errors import Unavailable
from satchel.storage.postgres.db import DOWN_MESSAGE, is_down

log = logging.getLogger(__name__)
CHANNEL = "satchel_changes"
HEARD = "satchel_changes_heard"  # each listener's answer to a notification, its payload the notification's
APPLICATION = "satchel-feed"  # the listeners' application_name, by which a publisher counts them
TIMEOUT = 5.0  # to connect, and for a keepalive or a publish to answer
# How long a publisher waits for every listener's answer; a node that does not answer in time (overloaded,
# or gone without its connection closing yet) only delays the change's caller by this much.
HEARD_SECONDS = 2.0
# A silent connection (a server gone without closing its sockets) is found by a query this often.
KEEPALIVE_SECONDS = 10.0
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 5.0
# In one statement: the notification, and how many listeners (this node's included) will answer it.
NOTIFY = (
    "SELECT pg_notify($1, $2), (SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name = $3)"
)


@dataclass
class _Awaited:
    """Answers to one published notification."""

    heard: int = 0
    expected: int | None = None  # known once the notification is sent
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        if self.expected is not None and self.heard >= self.expected:
            self.done.set()


class PostgresFeed:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._counter = itertools.count()
        self._stamp = next(self._counter)
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self._publisher: asyncpg.Connection[asyncpg.Record] | None = None
        self._publish_lock = asyncio.Lock()
        self._awaited: dict[str, _Awaited] = {}
        self._answers: set[asyncio.Task[None]] = set()

    def stamp(self) -> int:
        if not self._listening:
            return next(self._counter)
        return self._stamp

    def _moved(self, *_: object) -> None:
        self._stamp = next(self._counter)

    def _notified(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        if channel == CHANNEL:
            self._moved()
            if payload:  # its publisher waits to hear that this node's caches have started over
                task = asyncio.create_task(self._answer(str(payload)))
                self._answers.add(task)
                task.add_done_callback(self._answers.discard)
        elif (awaited := self._awaited.get(str(payload))) is not None:
            awaited.heard += 1
            awaited.check()

    async def _answer(self, payload: str) -> None:
        try:
            async with self._publish_lock:
                await self._notify(HEARD, payload)
        except Exception as exc:  # the publisher stops waiting after HEARD_SECONDS
            if not is_down(exc):
                log.exception("change feed: answering a notification failed")

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
        for task in list(self._answers):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
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
                conn = await asyncpg.connect(
                    self.dsn, timeout=TIMEOUT, server_settings={"application_name": APPLICATION}
                )
                lost = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set, lost))
                await conn.add_listener(CHANNEL, self._notified)
                await conn.add_listener(HEARD, self._notified)
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
        """Tell every node; return once every listening node has dropped its caches (or HEARD_SECONDS)."""
        payload = secrets.token_hex(8)
        awaited = self._awaited[payload] = _Awaited()
        try:
            async with self._publish_lock:
                reused = self._publisher is not None and not self._publisher.is_closed()
                try:
                    awaited.expected = await self._notify(CHANNEL, payload)
                except Exception as exc:
                    if not is_down(exc):
                        raise
                    if not reused:
                        raise Unavailable(DOWN_MESSAGE) from exc
                    # The connection may have died with a restart since the last publish: one more try, fresh.
                    try:
                        awaited.expected = await self._notify(CHANNEL, payload)
                    except Exception as again:
                        if is_down(again):
                            raise Unavailable(DOWN_MESSAGE) from again
                        raise
            self._moved()  # this node's caches at once, not when the notification comes back
            awaited.check()
            # Answers come back through this node's listener: without it, there is nothing to wait for.
            if self._listening:
                try:
                    await asyncio.wait_for(awaited.done.wait(), HEARD_SECONDS)
                except TimeoutError:
                    log.warning(
                        "change feed: %d of %s listeners answered in %s s",
                        awaited.heard, awaited.expected, HEARD_SECONDS,
                    )  # fmt: skip
        finally:
            del self._awaited[payload]

    def record_stamp(self, store_pk: int, key: str) -> int | None:
        return None  # a notification per record write would cost every write a round trip: no record caches

    def record_changed(self, store_pk: int, key: str) -> None:
        pass

    async def _notify(self, channel: str, payload: str) -> int:
        """Send one notification; returns how many listeners were connected when it was sent."""
        try:
            if self._publisher is None or self._publisher.is_closed():
                self._publisher = await asyncpg.connect(self.dsn, timeout=TIMEOUT)
            row = await self._publisher.fetchrow(NOTIFY, channel, payload, APPLICATION, timeout=TIMEOUT)
        except BaseException:
            if self._publisher is not None:
                self._publisher.terminate()
                self._publisher = None
            raise
        assert row is not None
        listeners: int = row[1]
        return listeners


def _set(event: asyncio.Event, *_: object) -> None:
    event.set()


def _done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
