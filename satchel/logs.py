"""Logging for a server process: text for people or one JSON object a line, written off the event loop.

A record is formatted where it is logged and its line put on a queue; a thread of its own writes what has
queued up to stderr in one write every 50 ms at most, so a slow pipe or terminal never stalls requests and a
busy server writes many lines a system call. Structured fields (a request's) travel as one `fields`
attribute of the record (`log.info(..., extra={"fields": {...}})`), which the JSON format spreads into the
object and the text format appends as name=value.

Measured on a GET of a 1 KiB record, the app called in a loop (CPU per request, the writer's included): a
request's line cost 45 us through the stdlib's QueueHandler and QueueListener (a write and a thread wake-up
per line, each field an `extra` attribute), about 18 us as here (the stdlib's documented savings: no caller
frame lookup, no thread or process names; the fields in one attribute; lines written in batches). Formatting
in the writer thread cost as much CPU, and held the interpreter for whole batches while requests waited.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
import time
from typing import Any, TextIO

import orjson

from satchel.settings import Settings

GATHER_SECONDS = 0.05  # at most this late, lines are written a batch a write


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, the record's fields appended as name=value (those with a value)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_iso(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if fields:
            line += "".join(f" {name}={value}" for name, value in fields.items() if value is not None)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Handover(logging.Handler):
    """Formats a record where it is logged (so the writer never holds the interpreter for long while the
    loop waits) and queues the line."""

    def __init__(self, lines: queue.SimpleQueue[str | None], formatter: logging.Formatter) -> None:
        super().__init__()
        self.lines = lines
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.put(self.format(record))
        except Exception:
            self.handleError(record)


class _Writer:
    """The thread that writes queued lines, as many as have queued up in one write."""

    def __init__(self, lines: queue.SimpleQueue[str | None]) -> None:
        self.lines = lines
        self.stream: TextIO = sys.stderr
        self.start()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="satchel-log", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        queued = self.lines
        while True:
            batch = [queued.get()]
            while not queued.empty():
                batch.append(queued.get())
            stop = batch[-1] is None  # the stop mark comes last: nothing is logged after it
            self._write([line for line in batch if line is not None])
            if stop:
                return
            # Let lines gather: a wake-up of this thread per line cost more than writing it.
            time.sleep(GATHER_SECONDS)

    def _write(self, lines: list[str]) -> None:
        if lines:
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed: nowhere to tell
                pass

    def stop(self) -> None:
        """Write what is queued, and end the thread (at once if it did not survive a fork)."""
        if self.thread.is_alive():
            self.lines.put(None)
            self.thread.join()


# The writers started here (one, after any reconfiguration).
_writers: list[_Writer] = []


def formatter(settings: Settings) -> logging.Formatter:
    return JsonFormatter() if settings.log_format == "json" else TextFormatter()


def _without_stack(record: logging.LogRecord) -> bool:
    """asyncpg's pool warns with a whole traceback at every retry while PostgreSQL is down (8 in a 7 s
    outage, 25 lines each); the one line says it, and Satchel logs the outage itself."""
    record.exc_info = None
    record.exc_text = None
    return True


def configure_logging(settings: Settings) -> None:
    """Send this process's logs (Satchel's and the libraries') to stderr through a writer thread, in the
    format and from the level the settings ask for. Safe to call again (a worker process forked from one
    that called it does): it replaces what it set up."""
    stop_logging()
    # The savings the logging docs list ("Optimization"): no caller frame walk, no thread or process names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()  # None: the writer's stop mark
    _writers.append(_Writer(lines))
    root.addHandler(_Handover(lines, formatter(settings)))
    root.setLevel(settings.log_level.upper())
    logging.getLogger("_granian").setLevel(settings.log_level.upper())
    pool = logging.getLogger("asyncpg.pool")
    if _without_stack not in pool.filters:
        pool.addFilter(_without_stack)


def quiet_libraries() -> None:
    """For a command, which says itself what failed: a library's retries are not news to its user (asyncpg's
    pool warns with a traceback at each while PostgreSQL is down)."""
    logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)


def stop_logging() -> None:
    """Write out what is queued and stop the writer thread."""
    while _writers:
        _writers.pop().stop()


def flush_logs() -> None:
    """Write out what is queued, and go on logging: worker processes end without running atexit."""
    for writer in _writers:
        writer.stop()
        writer.start()


atexit.register(stop_logging)


class Occasional:
    """A logger's messages about a state that lasts (counters that do not answer, a folder that cannot be
    written), at most one every `seconds`: said when it starts, not once a request."""

    def __init__(self, logger: logging.Logger, seconds: float) -> None:
        self.logger = logger
        self.seconds = seconds
        self._said_at = -seconds

    def log(self, level: int, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._said_at >= self.seconds:
            self._said_at = now
            self.logger.log(level, message, *args)


def granian_logging(settings: Settings) -> dict[str, Any]:
    """granian's logging config (its `log_dictconfig`): its own messages in Satchel's format, to stderr."""
    chosen = "satchel.logs.JsonFormatter" if settings.log_format == "json" else "satchel.logs.TextFormatter"
    stream = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "formatters": {"generic": {"()": chosen}, "access": {"()": chosen}},
        "handlers": {
            "console": {"formatter": "generic", **stream},
            "access": {"formatter": "access", **stream},
        },
    }


def _iso(created: float) -> str:
    seconds = int(created)
    milliseconds = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{milliseconds:03d}Z"
