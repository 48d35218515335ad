"""One writer thread per SQLite file, fed by a queue, committing jobs in groups.

Concurrent writers to one SQLite file contend for its lock; a single thread that runs every write avoids that,
and batching the jobs that queued up meanwhile into one transaction (each in its own savepoint, so one failure
does not undo the others) turns many small commits into one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]
MAX_BATCH = 512


Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


def _settle(outcomes: list[Outcome]) -> None:
    for fut, result, error in outcomes:
        if fut.done():
            continue
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)


def _tell(batch: list[Job], outcomes: list[tuple[Any, BaseException | None]]) -> None:
    """Hand each job's outcome to its event loop: one wake-up per loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for (_, fut, loop), (result, error) in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((fut, result, error))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_settle, settled)


class Writer:
    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="satchel-sqlite-writer", daemon=True)
        self._started = False

    def start(self) -> None:
        self._thread.start()
        self._started = True

    def stop(self) -> None:
        """Finish every queued job, then end the thread."""
        if self._started:
            self._queue.put(None)
            self._thread.join()
            self._started = False

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run job(connection) inside a write transaction; returns once it is committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((job, fut, loop))
        # Shielded: a client that disconnects must not turn a committed write into an unknown one.
        return await asyncio.shield(fut)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                try:
                    conn = conn or self._connect()
                    self._commit(conn, batch)
                except Exception as exc:
                    # The connection itself failed (opening it, or a ROLLBACK on a failing disk): fail this
                    # batch and start the next on a fresh connection, rather than end the thread and leave
                    # every later write waiting forever.
                    log.exception("the writer's connection failed; reconnecting")
                    _tell(batch, [(None, exc)] * len(batch))
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.close()
                    conn = None
                if stop:
                    return
        finally:
            if conn is not None:
                conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[Job]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, _, _ in batch:
                conn.execute("SAVEPOINT job")
                try:
                    outcomes.append((job(conn), None))
                    conn.execute("RELEASE job")
                except Exception as exc:  # the job's own failure: undo it alone
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((None, exc))
            conn.execute("COMMIT")
        except Exception as exc:  # the transaction itself failed (disk full, I/O error): nothing committed
            log.warning("write transaction failed: %s", exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(None, exc)] * len(batch)
        _tell(batch, outcomes)
