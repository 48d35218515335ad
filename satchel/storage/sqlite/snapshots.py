"""Point reads in a snapshot held between statements, for as long as nothing was committed to the file.

A statement outside a transaction begins and ends one of its own, which costs a point read the shared-memory
read lock (two fcntl calls) and a stat of the file: 2.5 to 4.5 µs of a 10 to 12 µs read on the machine of
bench/findings.md's tenth round, and 9% to 15% more GETs a second by random key. So the hot point reads
(records by key) keep their read transaction between statements, under two rules:

- Fresh. Every commit to the file, from any process, moves a stamp shared through a memory-mapped file
  (CommitStamp: the writer moves it right after COMMIT, before anyone hears of the write). A snapshot begun
  under another stamp is given up before the next read, so no read misses an acknowledged write.
- Short. Each snapshot ends at most HELD_SECONDS after it began, on the event loop that began it, whether
  more reads come or not. A held snapshot keeps a checkpoint from starting the WAL over: readers held theirs
  until the next commit before, and under a steady mixed load some reader always held one, so the WAL grew
  past a gigabyte a minute. The checkpoint's RESTART, which holds writes back while it waits for readers,
  now waits about this long.

Only a thread running an event loop holds a snapshot (the loop is what ends it); elsewhere the read runs
alone. Each thread's reader has a connection of its own, so no other statement ever runs in a held snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import random
import sqlite3
from pathlib import Path
from typing import Any

from satchel.storage.feed import STAMP, mapped_file

HELD_SECONDS = 0.002  # 20 reads to a snapshot at 10,000 a second


class CommitStamp:
    """A value every process on the data dir sees change once any of them commits; random, not a counter, so
    two processes moving it at once cannot put back a value a reader began under. Beside it, the value it
    had when a checkpoint, in any process, last copied the whole WAL (db.py)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None

    def open(self) -> None:
        if self._map is None:
            self._map = mapped_file(self.path, 2 * STAMP.size)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def read(self) -> int | None:
        """None when closed: nothing can be known, so nothing is held."""
        mapped = self._map
        if mapped is None:
            return None
        stamp: int = STAMP.unpack_from(mapped)[0]
        return stamp

    def move(self) -> None:
        mapped = self._map
        if mapped is not None:
            STAMP.pack_into(mapped, 0, random.getrandbits(64))

    def copied_under(self) -> int | None:
        """The stamp under which the whole WAL was last copied (0 before any copy; None when closed)."""
        mapped = self._map
        if mapped is None:
            return None
        stamp: int = STAMP.unpack_from(mapped, STAMP.size)[0]
        return stamp

    def mark_copied(self, stamp: int) -> None:
        mapped = self._map
        if mapped is not None:
            STAMP.pack_into(mapped, STAMP.size, stamp)


class HeldReader:
    """One thread's connection for point reads, and the snapshot it holds."""

    __slots__ = ("conn", "ends_on", "stamp")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.stamp: int | None = None  # the commit stamp the held snapshot began under
        self.ends_on: asyncio.AbstractEventLoop | None = None  # the loop whose timer will end it

    def one(self, sql: str, args: Any, stamp: int | None) -> tuple[Any, ...] | None:
        conn = self.conn
        if stamp is None or stamp != self.stamp or not conn.in_transaction:
            self._renew(stamp)
        row: tuple[Any, ...] | None = conn.execute(sql, args).fetchone()
        return row

    def _renew(self, stamp: int | None) -> None:
        """End the held snapshot, and begin another if it can be ended in time."""
        conn = self.conn
        if conn.in_transaction:
            conn.execute("COMMIT")
        self.stamp = None
        if stamp is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to end it: the read runs alone
            return
        if self.ends_on is not loop:
            loop.call_later(HELD_SECONDS, self.end)
            self.ends_on = loop
        # Deferred: the snapshot is taken by the read itself, after the stamp was looked at, so a commit in
        # between only makes it newer than its stamp says.
        conn.execute("BEGIN")
        self.stamp = stamp

    def end(self) -> None:
        self.ends_on = None
        self.stamp = None
        with contextlib.suppress(sqlite3.ProgrammingError):  # closed with its database meanwhile
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def close(self) -> None:
        self.stamp = None
        self.conn.close()
