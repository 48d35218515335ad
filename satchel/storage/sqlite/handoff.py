"""Several server processes on one SQLite file: one of them writes for all.

SQLite lets one writer at a time into a file. Worker processes that each write take turns on its lock, and
a turn costs each of them more than the write: a write job handed from one process to another costs less
than the wait. So when `satchel serve` runs several workers, one of them leads: it holds the lead lock (an
flock on `satchel.db-lead` in the data dir) and listens on a Unix socket beside it, and the others send it
their write jobs (a module-level function and its arguments, pickled) and wait for its answer, which comes
once the job has committed. The lead runs them in its own groups, on its event loop, beside its own writes.
This module holds the election and the lead's end; link.py the wire and the sending end, with its errors.

The election is for speed, not for safety: every writer of the file still takes the writer lock
(writer.py), so a management command, or a new lead starting while the old one finishes, never tears
anything.

A lead that stops tells the others (BYE): they send it nothing more, and close their link once every job on
it is answered; then the lead lets its lock go, and whichever worker writes next takes it. A lead that dies
(killed, crashed) leaves the jobs it had not answered in doubt: their requests fail with 503 saying so, and
reading the record back tells whether the change was stored. The lock goes with the process.

A lead that neither answers nor dies (stopped, or held by a disk that hangs) keeps its lock, so no other
process may write meanwhile; a worker waits for its answer to a job for `answer_seconds` (the setting
write_process_timeout_seconds), then answers the request 503 in doubt: the job may be in the lead's hands,
and commit (whole: one job, one transaction) once it runs again. Its late answer then reaches nobody (jobs are
numbered, and a job given up on keeps its number until its answer comes), so the link goes on serving the
next writes. A lead that ran again after a pause refuses the jobs that waited through it (STALE), so most
jobs given up on are not stored; those it had in hand when it stopped may be. Until some answer comes again,
the link sends nothing more: each write meanwhile is refused at once (not stored), rather than wait out the
bound in its turn while its job piles up, unread, in this process's memory.

Processes that fsync their commits (durability "power") elect their own lead, on `satchel.db-lead-power`:
a lead that does not fsync must never commit a write whose sender was told it would be.

Only processes of the same user may connect: the socket is in the data dir (0700), and the lead checks each
peer's uid, since what arrives is unpickled.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import sqlite3
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from satchel.clock import PAUSE_SECONDS
from satchel.errors import SatchelError, Unavailable
from satchel.storage.sqlite.link import ANSWER_SECONDS, BYE, Framed, Link, Record
from satchel.storage.sqlite.writer import WriterLock

log = logging.getLogger(__name__)
LEAD_FILE = "satchel.db-lead"
SOCKET_FILE = "satchel.db-lead.sock"
POWER_SUFFIX = "-power"  # on both, for the processes that fsync their commits
PEER_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
ELECTION_SECONDS = 10.0  # how long a write waits for some process to lead before it gives up
ELECTION_RETRY = 0.005  # seconds between two looks for a lead that is starting or stopping
STOP_WAIT = 5.0  # seconds a stopping lead waits for the others to close their links
MAX_SOCKET_PATH = 100  # bytes: sun_path holds 108 with its terminator
STALE = (
    "The server process that writes for this one did not run for a while, and the change waited through that:"
    " it was not stored, so that it cannot land over newer writes. Send it again."
)

# Queues another process's job (job, args, off_loop, record) on this process's writer: its future.
SubmitHere = Callable[[Callable[..., Any], tuple[Any, ...], bool, Record], asyncio.Future[Any]]
# Runs another process's job here as Database.write does (job, args, frees, tidies, off_loop, record), a full
# disk retried.
RunHere = Callable[[Callable[..., Any], tuple[Any, ...], bool, bool, bool, Record], Awaitable[Any]]


class Handoff:
    """Which process writes: this one (`leading`), or the lead, over `link`."""

    def __init__(
        self,
        data_dir: Path,
        submit_here: SubmitHere,
        run_here: RunHere,
        *,
        fsync: bool,
        answer_seconds: float = ANSWER_SECONDS,
    ) -> None:
        self._data_dir = data_dir
        self._answer_seconds = answer_seconds
        suffix = POWER_SUFFIX if fsync else ""
        self._lead_file = LEAD_FILE + suffix
        self._socket_file = SOCKET_FILE + suffix
        self._submit_here = submit_here
        self._run_here = run_here
        self._lock: WriterLock | None = None
        self._dir_fd: int | None = None  # for a socket path too long to bind by name
        self._server: asyncio.Server | None = None
        self._served: set[_Served] = set()
        self._electing: asyncio.Lock | None = None
        self._stopping = False
        self.leading = False
        self.link: Link | None = None

    async def start(self) -> None:
        """Lead if no process does yet; otherwise the link is made at the first write."""
        self._lock = WriterLock(self._data_dir / self._lead_file)
        self._electing = asyncio.Lock()
        if self._lock.take(wait=False):
            await self._lead()

    async def elect(self) -> Link | None:
        """The link to the lead, made now if there is none (or it closed); None once this process leads."""
        assert self._electing is not None, "start() first"
        assert self._lock is not None
        async with self._electing:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + ELECTION_SECONDS
            while not self.leading and not (self.link is not None and self.link.open):
                if self._stopping:
                    raise Unavailable("The server is stopping; send the change again.")
                if self._lock.take(wait=False):
                    await self._lead()
                    break
                try:
                    _, self.link = await loop.create_unix_connection(
                        functools.partial(Link, self._answer_seconds), self._address()
                    )
                    log.info("process %d hands its writes to the process that leads", os.getpid())
                except OSError:  # the lead is still starting, or stopping: no socket, or nobody listening
                    if loop.time() > deadline:
                        raise Unavailable(
                            f"No process of this server took the change within {ELECTION_SECONDS:g} s;"
                            " try again."
                        ) from None
                    await asyncio.sleep(ELECTION_RETRY)
            return None if self.leading else self.link

    async def stop(self) -> None:
        """Stop leading (answering every job already sent) or close the link; let the lock go."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
            for served in list(self._served):
                served.send((BYE, None, None))
            waits = [served.closed for served in self._served]
            if waits:
                await asyncio.wait(waits, timeout=STOP_WAIT)
            for served in list(self._served):
                served.transport.abort()
            with contextlib.suppress(FileNotFoundError):
                (self._data_dir / self._socket_file).unlink()
            self._server = None
        self.leading = False
        if self.link is not None:
            self.link.transport.close()
            self.link = None
        if self._lock is not None:
            self._lock.close()  # lets the lead lock go, if this process held it
            self._lock = None
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    async def _lead(self) -> None:
        assert self._lock is not None
        self.leading = True
        try:
            # A socket left by a lead that died: nobody listens on it, and only the lock's holder binds.
            with contextlib.suppress(FileNotFoundError):
                (self._data_dir / self._socket_file).unlink()
            loop = asyncio.get_running_loop()
            self._server = await loop.create_unix_server(lambda: _Served(self), self._address())
        except OSError as exc:
            # No socket can be made in the data dir (a filesystem without them): this process writes for
            # itself, and lets the lock go so that each other process finds the same and does too.
            log.warning("cannot take writes from other processes (%s); each process writes itself", exc)
            self._lock.release()
            return
        log.info("process %d writes for the server's other processes", os.getpid())

    def _address(self) -> str:
        path = str(self._data_dir / self._socket_file)
        if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
            return path
        # Too long for sun_path: reach the data dir through a descriptor held open on it.
        if self._dir_fd is None:
            self._dir_fd = os.open(self._data_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return f"/proc/self/fd/{self._dir_fd}/{self._socket_file}"


class _Served(Framed):
    """The lead's end of one other process's link: runs each job it sends, answers once committed."""

    def __init__(self, handoff: Handoff) -> None:
        super().__init__()
        self.handoff = handoff
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock: socket.socket = transport.get_extra_info("socket")
        _, uid, _ = PEER_CREDENTIALS.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEER_CREDENTIALS.size)
        )
        if uid != os.getuid():
            log.warning("refused a write link from user %d", uid)
            self.transport.abort()
            return
        self.handoff._served.add(self)

    def received(self, message: tuple[Any, ...]) -> None:
        seq, job, args, _, _, off_loop, sent, record = message
        if time.monotonic() - sent > PAUSE_SECONDS:
            # This process did not run while the job waited on the link (stopped, or its loop held): its
            # client may have given up and written elsewhere since, so it is not applied late.
            self._answer((seq, None, Unavailable(STALE)))
            return
        # Straight onto the writer, answered from its future's callback: no task per job.
        self.handoff._submit_here(job, args, off_loop, record).add_done_callback(
            functools.partial(self._committed, message)
        )

    def _committed(self, message: tuple[Any, ...], done: asyncio.Future[Any]) -> None:
        seq, job, args, frees, tidies, off_loop, _, record = message
        error = done.exception()
        if isinstance(error, sqlite3.OperationalError) and (frees or tidies):
            # A job that makes room may have failed for want of it (a full disk): again, the way write()
            # runs it, which gives up the disk's reserve for it.
            task = asyncio.get_running_loop().create_task(
                self._run_again(seq, job, args, frees, tidies, off_loop, record)
            )
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            return
        self._answer((seq, None, error) if error is not None else (seq, done.result(), None))

    async def _run_again(  # noqa: PLR0917 - a message's fields, in its order
        self,
        seq: int,
        job: Callable[..., Any],
        args: tuple[Any, ...],
        frees: bool,
        tidies: bool,
        off_loop: bool,
        record: Record,
    ) -> None:
        try:
            result = await self.handoff._run_here(job, args, frees, tidies, off_loop, record)
            answer: tuple[Any, ...] = (seq, result, None)
        except Exception as exc:
            answer = (seq, None, exc)
        self._answer(answer)

    def _answer(self, answer: tuple[Any, ...]) -> None:
        try:
            self.send(answer)
        except Exception:  # a result or error that does not pickle: the change stands, the answer cannot
            log.exception("the answer to a handed-over write could not be sent")
            self.send((answer[0], None, SatchelError("The change was stored, but its answer was lost.")))

    def connection_lost(self, exc: Exception | None) -> None:
        self.handoff._served.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)
