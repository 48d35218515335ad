"""`satchel run`'s copy of its command's output into the run's log, as the platform keeps an Actor's log.

The command's stdout and stderr are pipes read by a thread each: what comes is shown on `satchel run`'s own
stdout and stderr and held for the log, each line beginning with the time it came (as on the platform, whose
clients split a log into messages at those times). A line printed in pieces (an unbuffered print writes its
parts one by one) is waited for, up to PIECE_SECONDS, so that it is shown and kept whole rather than cut by
a line of the other stream. Another thread sends what is held to the run's log (`POST
/v2/actor-runs/{runId}/log`) every SEND_SECONDS, or sooner once SEND_BYTES wait. A server that does not
answer for a while costs nothing shown: the output is held (up to HELD_BYTES) and sent when it answers.
Once the log is full (the server keeps MAX_LOG_BYTES of it), the rest is only shown.

When `satchel run`'s own stdout goes away (`satchel run ... | head`), the command's does too, as it would
have without `satchel run` in between: the pipe is closed, and the command's next write fails.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

from satchel.clock import iso, now_ms

READ_BYTES = 64 * 1024
PIECE_SECONDS = 0.02
SEND_SECONDS = 1.0
SEND_BYTES = 256 * 1024
HELD_BYTES = 8 * 2**20
# How long the output is read after the command has ended: a process it left behind may hold its pipes open.
LAST_OUTPUT_SECONDS = 2.0
# How long the rest of the log is tried once the command has ended (the server may be away for a moment).
LAST_SEND_SECONDS = 60.0
RETRY_SECONDS = 1.0


class LogFull(Exception):
    """The server keeps no more of this log."""


def _readable(fd: int, seconds: float) -> bool:
    return bool(select.select([fd], [], [], seconds)[0])


class RunLog:
    """Copies of the command's output streams, shown as they come and sent to the run's log.

    send: adds bytes to the run's log (at most `piece` at a time); raises LogFull when the log is full, and
    anything else when the server could not take them (they are sent again later).
    say: tells the user that the log is full, or that the output could not be sent (once) and is again.
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
        self._open = False  # what is held last ends in the middle of a line
        self._copies: list[threading.Thread] = []
        self._sender = threading.Thread(target=self._sending, name="run-log", daemon=True)
        self._sender.start()

    def copy(self, source: IO[bytes], shown_on: IO[bytes] | None) -> None:
        """Read `source` (a pipe from the command) to its end in a thread: shown on `shown_on` and held."""
        thread = threading.Thread(target=self._copy, args=(source, shown_on), daemon=True)
        thread.start()
        self._copies.append(thread)

    def close(self, last: Sequence[str] = ()) -> None:
        """Once the command has ended: read what is left of its output, add `satchel run`'s own last lines
        (why the command did not start, how the run ended), and send the rest of the log. The lines go in
        only after the output is read to its end: the command's last piece may still be on its way."""
        if self._closing:
            return
        deadline = time.monotonic() + LAST_OUTPUT_SECONDS
        for thread in self._copies:
            thread.join(max(deadline - time.monotonic(), 0))
        for line in last:  # on a line of its own after output that did not end its last
            self._hold((b"\n" if self._open else b"") + line.encode() + b"\n", at_line_start=not self._open)
        self._closing = True
        self._wake.set()
        self._sender.join(LAST_SEND_SECONDS + 2 * RETRY_SECONDS)
        if self._dropped:
            self._say(
                f"{self._dropped} bytes of output are not in the run's log: the server did not take them"
            )

    def _copy(self, source: IO[bytes], shown_on: IO[bytes] | None) -> None:
        fd = source.fileno()
        pending = b""
        at_line_start = True
        ended = False
        while not ended:
            chunk = os.read(fd, READ_BYTES)
            if not chunk:
                break
            pending += chunk
            while b"\n" not in pending and len(pending) < READ_BYTES and _readable(fd, PIECE_SECONDS):
                more = os.read(fd, READ_BYTES)
                ended = not more
                if ended:
                    break
                pending += more
            cut = len(pending) if ended else (pending.rfind(b"\n") + 1 or len(pending))
            text, pending = pending[:cut], pending[cut:]
            at_line_start = self._hold(text, at_line_start=at_line_start)
            if shown_on is not None and not _show(text, shown_on):
                break  # satchel run's own output is gone: the command's goes too (the pipe is closed below)
        if pending:
            self._hold(pending, at_line_start=at_line_start)
            if shown_on is not None:
                _show(pending, shown_on)
        source.close()

    def _hold(self, text: bytes, *, at_line_start: bool) -> bool:
        """Hold text for the log, each line begun in it stamped with the time; whether it ends a line."""
        stamp = iso(now_ms()).encode() + b" "
        lines = text.split(b"\n")
        stamped = b"\n".join(
            stamp + line if (i or at_line_start) and line else line for i, line in enumerate(lines)
        )
        with self._lock:
            if not self._full:
                room = max(HELD_BYTES - len(self._held), 0)
                if len(stamped) > room:
                    self._dropped += len(stamped) - room
                    stamped = stamped[:room]
                self._held += stamped
                if stamped:
                    self._open = not stamped.endswith(b"\n")
                if len(self._held) >= SEND_BYTES:
                    self._wake.set()
        return text.endswith(b"\n")

    def _sending(self) -> None:
        while not self._closing:
            self._wake.wait(SEND_SECONDS)
            self._wake.clear()
            self._send_held()
        deadline = time.monotonic() + LAST_SEND_SECONDS
        while not self._send_held() and time.monotonic() < deadline:
            time.sleep(RETRY_SECONDS)
        self._dropped += len(self._held)  # the server did not take them by the end

    def _send_held(self) -> bool:
        """Send what is held; whether it all went (or the log is full)."""
        with self._lock:
            text = bytes(self._held)
            self._held.clear()
        sent = 0
        try:
            while sent < len(text) and not self._full:
                self._send(text[sent : sent + self._piece])
                sent += self._piece
        except LogFull:
            self._full = True
            self._say("the run's log is full: the rest of the output is shown here only")
        except Exception as exc:  # whatever the server or the network did, the command goes on
            if not self._failing:
                self._say(f"the output could not be sent to the run's log ({exc}); it is sent again later")
            self._failing = True
            with self._lock:  # back in front of what came meanwhile, for the next try
                self._held[:0] = text[sent:]
            return False
        if self._failing:
            self._say("the output is sent to the run's log again")
            self._failing = False
        return True


def _show(text: bytes, shown_on: IO[bytes]) -> bool:
    """Write text to `satchel run`'s own stdout or stderr; False once that is gone."""
    try:
        shown_on.write(text)
        shown_on.flush()
    except (OSError, ValueError):
        return False
    return True
