"""Several server processes on one SQLite file: one of them writes for all.

SQLite lets one writer at a time into a file. Worker processes that each write take turns on its lock, and
a turn costs each of them more than the write: a write job handed from one process to another costs less
than the wait. So when `satchel serve` runs several workers, one of them leads: it holds the lead lock (an
flock on `satchel.db-lead` in the data dir) and listens on a Unix socket beside it, and the others send it
their write jobs (a module-level function and its arguments, pickled) and wait for its answer, which comes
once the job has committed. The lead runs them in its own groups, on its event loop, beside its own writes.

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
import itertools
import logging
import os
import pickle
import socket
import sqlite3
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

from satchel.clock import PAUSE_SECONDS
from satchel.errors import SatchelError, Unavailable
from satchel.logs import Occasional
from satchel.storage.sqlite.writer import WriterLock, call_after

log = logging.getLogger(__name__)
_unanswered = Occasional(log, 60.0)  # a lead that does not answer lasts: said once a minute, not per request
LEAD_FILE = "satchel.db-lead"
SOCKET_FILE = "satchel.db-lead.sock"
POWER_SUFFIX = "-power"  # on both, for the processes that fsync their commits
LENGTH = struct.Struct("!I")
PEER_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
BYE = 0  # the sequence number of the lead's word that it stops
ELECTION_SECONDS = 10.0  # how long a write waits for some process to lead before it gives up
ELECTION_RETRY = 0.005  # seconds between two looks for a lead that is starting or stopping
STOP_WAIT = 5.0  # seconds a stopping lead waits for the others to close their links
ANSWER_SECONDS = 30.0  # how long a job waits for the lead's answer, unless told otherwise (as the setting)
MAX_SOCKET_PATH = 100  # bytes: sun_path holds 108 with its terminator
IN_DOUBT = (
    "The server process that writes for this one stopped before it answered; the change may or may not"
    " have been stored. Read it back, or send it again."
)
STALE = (
    "The server process that writes for this one did not run for a while, and the change waited through that:"
    " it was not stored, so that it cannot land over newer writes. Send it again."
)
NOT_SENT = (
    "The server process that writes for this one had stopped; the change was not stored. Send it again."
)
NO_ANSWER = (
    "The server process that writes for this one does not answer (nothing came back within {seconds:g} s):"
    " the change may or may not have been stored, and may yet be once that process runs again. Read it back,"
    " or send it again."
)
SILENT = (
    "The server process that writes for this one does not answer (it left changes unanswered for"
    " {seconds:g} s, and has answered nothing since); the change was not stored. Send it again."
)


class NotSent(Unavailable):
    """The job never left this process (the lead was gone before it could be written to the link), so it did
    not run: safe to hand to the next lead."""


class InDoubt(Unavailable):
    """The job reached the lead, which went away before it answered: it may have committed, or may yet (a
    stopping lead runs what it holds), so nothing it would name may be removed as if it had failed."""


class NoAnswer(InDoubt):
    """The job was sent to the lead, which has not answered it in time (stopped, or stuck): it may have
    committed, or may yet, as for InDoubt."""


# The record a job changes, (store pk, key), whose stamp the lead moves once the job has committed: the
# process that sent it may be gone before the answer comes (Database.write's `record`).
Record = tuple[int, str] | None
# Queues another process's job (job, args, off_loop, record) on this process's writer: its future.
SubmitHere = Callable[[Callable[..., Any], tuple[Any, ...], bool, Record], asyncio.Future[Any]]
# Runs another process's job here as Database.write does (job, args, frees, tidies, off_loop, record), a full
# disk retried.
RunHere = Callable[[Callable[..., Any], tuple[Any, ...], bool, bool, bool, Record], Awaitable[Any]]
After = Callable[[], None] | None


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
        self.link: _Link | None = None

    async def start(self) -> None:
        """Lead if no process does yet; otherwise the link is made at the first write."""
        self._lock = WriterLock(self._data_dir / self._lead_file)
        self._electing = asyncio.Lock()
        if self._lock.take(wait=False):
            await self._lead()

    async def elect(self) -> _Link | None:
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
                        functools.partial(_Link, self._answer_seconds), self._address()
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


def _frame(message: tuple[Any, ...]) -> bytes:
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(data)) + data


class _Framed(asyncio.Protocol):
    """A stream of length-prefixed pickled tuples each way; what is sent in one turn of the loop goes out
    in one write."""

    transport: asyncio.Transport

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._out: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though not always a subclass of asyncio.Transport (uvloop's are not).
        self.transport = cast(asyncio.Transport, transport)

    def send(self, message: tuple[Any, ...]) -> None:
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(_frame(message))

    def _flush(self) -> bool:
        """Write what was sent this turn; whether it left. It did not when the link was already closing, or
        when the write failed at once (a lead that died: EPIPE), which closes the transport as it returns."""
        out, self._out = self._out, []
        if self.transport.is_closing():
            return False
        self.transport.write(b"".join(out))
        return not self.transport.is_closing()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            for message in self._messages():
                self.received(message)
        except Exception:  # a frame that does not unpickle: the link cannot be trusted further
            log.exception("a write link sent what could not be read; closing it")
            self.transport.abort()

    def _messages(self) -> Iterator[tuple[Any, ...]]:
        buffer = self._buffer
        start = 0
        while len(buffer) - start >= LENGTH.size:
            (length,) = LENGTH.unpack_from(buffer, start)
            end = start + LENGTH.size + length
            if len(buffer) < end:
                break
            message = pickle.loads(memoryview(buffer)[start + LENGTH.size : end])  # noqa: S301 - same user
            start = end
            yield message
        del buffer[:start]

    def received(self, message: tuple[Any, ...]) -> None:
        raise NotImplementedError


class _Served(_Framed):
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


class _Link(_Framed):
    """This process's end of its link to the lead: jobs out, answers in."""

    def __init__(self, answer_seconds: float = ANSWER_SECONDS) -> None:
        super().__init__()
        self.open = True  # until the lead says BYE, or the link is lost
        self._seq = itertools.count(BYE + 1)
        # Each job's future, its after-commit call and when it was sent (time.monotonic()), in the order sent.
        self._waiting: dict[int, tuple[asyncio.Future[Any], After, float]] = {}
        # Jobs given up on (answered in doubt) whose answers have not come: their after-commit calls.
        self._given_up: dict[int, After] = {}
        self._answer_seconds = answer_seconds
        # One timer, for the oldest job waiting (not one a job): the hot path only looks whether it is set.
        self._timer: asyncio.TimerHandle | None = None
        self._silent = False  # from a job given up on until the lead's next answer: nothing is sent meanwhile
        # Jobs are numbered and written in order: those numbered past `_written` never left this process, so
        # a lost link fails them as NotSent rather than in doubt.
        self._last = BYE
        self._written = BYE

    def run(  # noqa: PLR0917 - Database.write's arguments, passed on as they come
        self,
        job: Callable[..., Any],
        args: tuple[Any, ...],
        frees: bool,
        tidies: bool,
        off_loop: bool,
        after: After,
        record: Record = None,
    ) -> asyncio.Future[Any]:
        """The job sent to the lead; its future is resolved once it has committed there, after `after` has
        been called here (even if the future was cancelled meanwhile), or fails in doubt (NoAnswer) when no
        answer has come within answer_seconds. Refused at once, not sent, while the lead is silent.
        `record`: the record the job changes, whose stamp the lead moves itself once the job has committed
        (this process may be gone by then)."""
        if self._silent:
            raise Unavailable(SILENT.format(seconds=self._answer_seconds))
        seq = next(self._seq)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        # Sent with the time (CLOCK_MONOTONIC, the same in every process of the machine) for the lead's check.
        sent = time.monotonic()
        self.send((seq, job, args, frees, tidies, off_loop, sent, record))
        self._last = seq
        self._waiting[seq] = (fut, after, sent)
        if self._timer is None:
            self._timer = loop.call_later(self._answer_seconds, self._give_up)
        return fut

    def _give_up(self) -> None:
        """Answer in doubt the jobs that waited answer_seconds; then wait for the oldest left."""
        self._timer = None
        now = time.monotonic()
        late = []
        for seq, (_, _, sent) in self._waiting.items():  # oldest first
            if now - sent < self._answer_seconds:
                self._timer = asyncio.get_running_loop().call_later(
                    self._answer_seconds - (now - sent), self._give_up
                )
                break
            late.append(seq)
        if not late:
            return
        self._silent = True
        _unanswered.log(
            logging.WARNING,
            "process %d had no answer to a write within %g s from the process that writes for it (stopped, or"
            " stuck): the request is answered 503, the change in doubt",
            os.getpid(), self._answer_seconds,
        )  # fmt: skip
        for seq in late:
            fut, after, _ = self._waiting.pop(seq)
            self._given_up[seq] = after
            # Perhaps committed already, its answer held up: those reading the record through a cache look
            # again (and once more if its answer says it committed).
            call_after(after)
            if not fut.done():
                fut.set_exception(NoAnswer(NO_ANSWER.format(seconds=self._answer_seconds)))

    def _flush(self) -> bool:
        last = self._last  # every job up to it is in this write
        sent = super()._flush()
        if sent:
            self._written = last
        return sent

    def received(self, message: tuple[Any, ...]) -> None:
        seq, result, error = message
        self._silent = False  # the lead runs: the next job goes to it
        if seq == BYE:
            self.open = False
        elif (waiting := self._waiting.pop(seq, None)) is not None:
            fut, after, _ = waiting
            if error is None:
                call_after(after)
            if not fut.done():
                if error is None:
                    fut.set_result(result)
                else:
                    fut.set_exception(error)
        else:
            # The late answer to a job given up on: its request was answered already, so it goes to nobody;
            # a change it committed is announced.
            after = self._given_up.pop(seq)
            if error is None:
                call_after(after)
        # A stopping lead answers every job it holds: the link stays until they have all come.
        if not self.open and not self._waiting and not self._given_up:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        given_up, self._given_up = self._given_up, {}
        for seq, after in given_up.items():
            if seq <= self._written:
                call_after(after)  # perhaps committed, as below; its request was answered in doubt already
        waiting, self._waiting = self._waiting, {}
        for seq, (fut, after, _) in waiting.items():
            if seq > self._written:
                if not fut.done():
                    fut.set_exception(NotSent(NOT_SENT))
                continue
            # Perhaps committed: those reading the record through a cache must look again.
            call_after(after)
            if not fut.done():
                fut.set_exception(InDoubt(IN_DOUBT))
