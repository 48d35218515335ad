"""The stop signals (SIGTERM, SIGINT) in `satchel serve` and its workers: each is told to stop once, whenever
the signal comes.

granian forks its workers and has each handle these signals on its uvloop event loop, which acts on a signal
only while it runs: one that comes while it does not is noted by the loop's Python handler, with no byte in
the loop's wakeup pipe, and nothing acts on it. A starting worker's loop has its handlers and does not run
three times: after granian sets them and before it runs the app's startup on it (some 0.5 ms), after the
startup and before it serves (1-3 ms), and as the startup's run ends, once the loop has looked at its wakeup
pipe for the last time (longer when another thread holds the GIL then): the signal's byte is in a pipe the
loop closes unread. A stop that came in one of these (`satchel serve` stopped at once after it started, or
after granian started a worker again in place of one that died) was lost, and the worker served on until
granian killed it at the shutdown timeout: 4 stops in 102 sent 14-26 ms after both workers of a server were
SIGKILLed, and every one sent while a worker was held in one of them. Before the loop, from the fork to the
app's factory, a worker has the handlers of the process it was forked from, which only mark a forked copy of
granian's server.

And a second stop signal to a worker finishing the requests in hand (a second `kill` or `systemctl stop`, a
second Ctrl-C) hung it for good: granian's handler tells its worker to stop again (`WorkerSignal.set`), which
waits for a lock granian's own thread holds while that waits for the GIL (3 times in 3 with an upload in
flight).

So no stop signal goes to granian's handlers. The worker starts with them blocked (`hold_at_fork`, in
`satchel serve`), so one sent then waits in the kernel; the factory gives them a Python handler that writes
the signal's number to a pipe, and unblocks them (`WorkerStops`). Python runs the handler for every signal
that comes, whatever the loop does, and the loop reads the pipe from its first run on. In place of granian's
loop handlers (`set_loop_signals`, which granian's worker calls by name) the worker makes granian's stop
signal and hands it to granian with no handler, and the first stop read from the pipe sets it, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from typing import Any

import granian._signals
from granian._granian import WorkerSignal

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})  # how granian stops a worker, and Ctrl-C
log = logging.getLogger(__name__)


class StopStaysSet(threading.Event):
    """What granian's server process (`satchel serve`) waits on for its next task (stop, start a worker
    again in place of one that died, reload), made to stay set once the process is told to stop.

    granian's stop handler sets the server's `interrupt_signal`, then this event. Woken for a worker that
    died, granian looks at `interrupt_signal`, then clears the event and starts another worker: a stop
    handled between the look and the clear was wiped out, and `satchel serve` served on and never stopped
    (3 stops lost so in 425 sent as both workers were SIGKILLed; each of 2 sent while it was held there).
    Cleared, the event is set again if the stop has come: granian starts that worker, wakes at once, and
    stops."""

    def __init__(self, server: Any) -> None:
        super().__init__()
        self.server = server

    def clear(self) -> None:
        super().clear()
        if self.server.interrupt_signal:  # the handler sets it before the event
            self.set()


def hold_at_fork() -> None:
    """Have every process forked from this one from now on (granian's workers) start with the stop signals
    blocked, for `WorkerStops` to unblock. Call it after this process has forked whatever else it forks (the
    admin's bootstrap): a process that never unblocks them could not be stopped but by SIGKILL."""
    blocked: list[set[int | signal.Signals]] = []  # the mask before, put back once forked

    def before() -> None:
        blocked.append(signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS))

    def after_in_parent() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked.pop())

    os.register_at_fork(before=before, after_in_parent=after_in_parent)


class WorkerStops:
    """A worker's stop signals, read on its event loop from a pipe their handler writes them to; the first
    tells granian to stop the worker. Made first thing in the worker, before it starts a thread (a thread
    keeps the signal mask it starts with)."""

    def __init__(self) -> None:
        self.kept, self.into = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.granian: WorkerSignal | None = None  # what tells granian's worker to stop, once granian asks
        self.told = False
        self.also: list[asyncio.Event] = []  # set on a stop beside granian's (the app's)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.keep)
        granian._signals.set_loop_signals = self.set_loop_signals
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def keep(self, number: int, frame: Any) -> None:
        """The handler of the stop signals: the number into the pipe, for the loop to read."""
        with contextlib.suppress(BlockingIOError):  # full: stops enough are in it
            os.write(self.into, bytes([number]))

    def set_loop_signals(self, loop: asyncio.AbstractEventLoop) -> WorkerSignal:
        """In place of granian's function of this name, which its worker calls before the app's startup:
        granian's stop signal, set by the first stop the loop reads, rather than by handlers on the loop."""
        self.granian = WorkerSignal()
        loop.add_reader(self.kept, self.read)
        return self.granian

    def read(self) -> None:
        """On the loop: the stop signals in the pipe."""
        try:
            numbers = os.read(self.kept, 512)
        except BlockingIOError:
            return
        if STOP_SIGNALS.intersection(numbers):
            self.stop()

    def stop(self) -> None:
        """On the loop, for each stop: the app's events set, and granian told to stop the worker, the first
        time only."""
        for event in self.also:
            event.set()
        if self.told or self.granian is None:
            return
        self.told = True
        log.debug("worker %d is told to stop", os.getpid())
        self.granian.set()

    def check(self) -> None:
        """At the app's startup: say so if granian's worker made its stop signal without this (a granian
        that no longer calls `set_loop_signals`): its own handlers then took the signals over, as before."""
        if self.granian is None:
            log.warning(
                "worker %d: granian set its own signal handlers; a stop as a worker starts may be lost",
                os.getpid(),
            )
