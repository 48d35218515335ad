"""The link between the processes of one SQLite file, and the end of it that hands writes to the lead.

Each way goes a stream of length-prefixed pickled tuples (Framed). A process that does not lead sends each
write job over its Link, numbered, with the time it was sent, and waits for the lead's answer; handoff.py says
who leads and holds the lead's end. A job ends committed, refused, or in doubt (the lead went away, or did not
answer within the bound, before it said): the errors below tell those apart, since what a request may undo
depends on it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

from satchel.errors import Unavailable
from satchel.logs import Occasional
from satchel.storage.sqlite.writer import call_after

log = logging.getLogger(__name__)
_unanswered = Occasional(log, 60.0)  # a lead that does not answer lasts: said once a minute, not per request
LENGTH = struct.Struct("!I")
BYE = 0  # the sequence number of the lead's word that it stops
ANSWER_SECONDS = 30.0  # how long a job waits for the lead's answer, unless told otherwise (as the setting)
IN_DOUBT = (
    "The server process that writes for this one stopped before it answered; the change may or may not"
    " have been stored. Read it back, or send it again."
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
After = Callable[[], None] | None


def frame(message: tuple[Any, ...]) -> bytes:
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(data)) + data


class Framed(asyncio.Protocol):
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
        self._out.append(frame(message))

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


class Link(Framed):
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
