"""`satchel run`'s copy of its command's output into the run's log, as the platform keeps an Actor's log.

The command's stdout and stderr are pipes read by a thread each: what comes is shown at once on `satchel
run`'s own stdout and stderr, as before, and held for the log in whole lines, so that a line of one stream is
not cut by the other's (a print may come in several writes). Another thread sends what is held to the run's
log (`POST /v2/actor-runs/{runId}/log`) every SEND_SECONDS, or sooner once SEND_BYTES wait. A server that does
not answer for a while costs nothing shown: the output is held (up to HELD_BYTES) and sent when it answers.
Once the log is full (the server keeps MAX_LOG_BYTES of it), the rest is only shown.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import IO

READ_BYTES = 64 * 1024
SEND_SECONDS = 1.0
SEND_BYTES = 256 * 1024
HELD_BYTES = 8 * 2**20
# How long the output is read after the command has ended: a process it left behind may hold its pipes open.
LAST_OUTPUT_SECONDS = 2.0
LAST_SEND_SECONDS = 30.0


class LogFull(Exception):
    """The server keeps no more of this log."""


class RunLog:
    """Copies of the command's output streams, shown as they come and sent to the run's log.

    send: adds bytes to the run's log (at most MAX_LOG_APPEND at a time); raises LogFull when the log is
    full, and anything else when the server could not take them (they are sent again later).
    say: tells the user, once each, that the log is full or that the output could not be sent.
    """

    def __init__(self, send: Callable[[bytes], None], say: Callable[[str], None], piece: int) -> None:
        self._send = send
        self._say = say
        self._piece = piece
        self._held = bytearray()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._full = False
        self._failing = False
        self._dropped = 0
        self._copies: list[threading.Thread] = []
        self._sender = threading.Thread(target=self._sending, name="run-log", daemon=True)
        self._sender.start()

    def copy(self, source: IO[bytes], shown_on: IO[bytes] | None) -> None:
        """Read `source` (a pipe from the command) to its end in a thread: each chunk shown on `shown_on`
        and held for the log."""
        thread = threading.Thread(target=self._copy, args=(source, shown_on), daemon=True)
        thread.start()
        self._copies.append(thread)

    def close(self) -> None:
        """Once the command has ended: read what is left of its output, and send the rest of the log."""
        for thread in self._copies:
            thread.join(LAST_OUTPUT_SECONDS)
        self._closing = True
        self._wake.set()
        self._sender.join(LAST_SEND_SECONDS)
        if self._dropped:
            self._say(f"{self._dropped} bytes of output were shown but not kept in the run's log")

    def _copy(self, source: IO[bytes], shown_on: IO[bytes] | None) -> None:
        fd = source.fileno()
        line = b""  # the end of the last chunk, after its last line's end: held once its line ends
        while chunk := os.read(fd, READ_BYTES):
            if shown_on is not None:
                try:
                    shown_on.write(chunk)
                    shown_on.flush()
                except (OSError, ValueError):  # the terminal or pipe is gone: the log still gets it
                    shown_on = None
            line += chunk
            cut = max(line.rfind(b"\n"), line.rfind(b"\r")) + 1
            if cut == 0 and len(line) < READ_BYTES:  # no line's end yet, nor a line too long to wait for
                continue
            cut = cut or len(line)
            self._hold(line[:cut])
            line = line[cut:]
        self._hold(line)
        source.close()

    def _hold(self, chunk: bytes) -> None:
        with self._lock:
            if self._full:
                return
            room = max(HELD_BYTES - len(self._held), 0)
            if len(chunk) > room:
                self._dropped += len(chunk) - room
                chunk = chunk[:room]
            self._held += chunk
            if len(self._held) >= SEND_BYTES:
                self._wake.set()

    def _sending(self) -> None:
        while not self._closing:
            self._wake.wait(SEND_SECONDS)
            self._wake.clear()
            self._send_held()
        self._send_held()
        self._dropped += len(self._held)  # the server did not take them by the end

    def _send_held(self) -> None:
        with self._lock:
            text = bytes(self._held)
            self._held.clear()
        sent = 0
        try:
            while sent < len(text) and not self._full:
                self._send(text[sent : sent + self._piece])
                sent += self._piece
            self._failing = False
        except LogFull:
            self._full = True
            self._say("the run's log is full: the rest of the output is shown here only")
        except Exception as exc:  # whatever the server or the network did, the command goes on
            if not self._failing:
                self._say(f"the output could not be sent to the run's log ({exc}); it is sent again later")
            self._failing = True
            with self._lock:  # back in front of what came meanwhile, for the next try
                self._held[:0] = text[sent:]
