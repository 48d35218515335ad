"""The process that writes for a server's workers on SQLite, and serves nothing else.

With several workers one process leads the writes (handoff.py). A worker that leads runs everyone's SQL on
its event loop, and SQLite lets go of the GIL at every statement, which granian's threads in a serving
process take each time: the loop then waits to get it back, and the lead's own requests slow down. So
`satchel serve` with several workers starts this process first; it takes the lead and runs nothing but the
jobs handed to it. Should it die, the workers elect a lead among themselves at their next write.

It stops when its standard input closes: `satchel serve` closes it once its workers have finished, and the
kernel closes it when `satchel serve` dies, however it dies. Signals sent to the whole process group (Ctrl-C,
a service manager's SIGTERM) are left to `satchel serve`, which stops the workers first.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import threading

import uvloop

from satchel.logs import configure_logging, flush_logs
from satchel.settings import Settings
from satchel.storage.feed import StampFeed
from satchel.storage.housekeeping import Background, every
from satchel.storage.sqlite.db import RECLAIM_SECONDS, Database

log = logging.getLogger(__name__)
READY = b"leading"
STOP_SECONDS = 30.0  # for the jobs still in hand when it is told to stop


def start() -> subprocess.Popen[bytes] | None:
    """The process started, once it leads (it reads the settings from the environment, as workers do); None
    if it could not take the lead, and the workers will elect one."""
    process = subprocess.Popen(
        [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() == READY:
        threading.Thread(target=_reap, args=(process,), name="satchel-writer-watch", daemon=True).start()
        return process
    log.warning("the writing process did not start; the workers will write for each other")
    stop(process)
    return None


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for the process, so that one that dies is not left a zombie until the server stops, and say so:
    it ends with 0 only when stop() told it to."""
    code = process.wait()
    if code != 0:
        log.warning(
            "the writing process (%d) ended with code %d; the workers write for each other from now on",
            process.pid, code,
        )  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    """Tell it to stop, and wait while it answers what it was sent."""
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.close()
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stdout.close()


async def _lead(settings: Settings) -> None:
    # The record stamps the workers' caches go by: a record changed by a job run here has its stamp moved
    # here, once committed, since the worker that sent the job may be gone before the answer reaches it.
    feed = StampFeed.of(settings.data_dir)
    await feed.open()
    try:
        await _lead_with(settings, feed)
    finally:
        await feed.close()


async def _lead_with(settings: Settings, feed: StampFeed) -> None:
    db = Database(
        settings.data_dir,
        fsync=settings.durability == "power",
        handoff=True,
        answer_seconds=settings.write_process_timeout_seconds,
        on_record_change=feed.record_changed,
    )
    await db.open()
    try:
        if db.handoff is None or not db.handoff.leading:
            return
        sys.stdout.buffer.write(READY + b"\n")
        sys.stdout.flush()
        tasks = Background()
        tasks.start(
            every(RECLAIM_SECONDS, db.reclaim)
        )  # the writer's own housekeeping (the workers checkpoint)
        try:
            await _input_closed()
        finally:
            await tasks.stop()
    finally:
        await db.close()


async def _input_closed() -> None:
    loop = asyncio.get_running_loop()
    closed = loop.create_future()

    class Watch(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            closed.set_result(None)

    await loop.connect_read_pipe(Watch, sys.stdin)
    await closed


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    settings = Settings()
    configure_logging(settings)
    try:
        # uvloop, as the workers serve on: the link's reads and writes are most of this process's own work.
        uvloop.run(_lead(settings))
    finally:
        flush_logs()


if __name__ == "__main__":
    main()
