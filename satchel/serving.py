"""Serving over HTTP: claiming the port, the open-file limit, and granian's connection settings.

Three things decided how granian is set up, each measured on this code before it was:
- granian's default HTTP mode ("auto") first reads a connection's opening bytes to tell HTTP/1 from HTTP/2,
  with no timeout, so a connection that sends nothing was never closed; and granian holds at most
  `backpressure` connections per process (it was 2048: backlog // workers), past which it accepts no more.
  2,100 idle connections stopped the server answering anyone (no answer in 20 s) for as long as they stayed
  open. Serving HTTP/1 only puts every connection under hyper's header-read timeout from the moment it
  opens, which is also its idle timeout between requests (hyper runs the one clock for both); the cap comes
  from the settings and the open-file limit, and `connections.py` sheds the idlest connections before the
  cap is reached. Now 3,000 of each kind (idle, slow headers, stalled bodies) are held while a normal
  client is answered in 20-80 ms.
- Linux gives a process 1,024 open files by default; each connection takes one, and a download or upload
  one more (the blob or the spool file), so the soft limit is raised to the hard one at start.
- granian binds its listening sockets with SO_REUSEPORT (each worker process listens on its own socket),
  so a second server on the same port bound without a word and took half its requests to another database.
  The port is checked, and held, before anything starts.

On SIGTERM (or Ctrl-C) granian stops accepting connections and lets each worker finish the requests it is
serving, uploads included, before the app shuts down; a worker still busy after `shutdown_timeout_seconds`
is killed.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import resource
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings

from satchel import stop_signals
from satchel.connections import ConnectionGuard
from satchel.logs import configure_logging, granian_logging
from satchel.metrics import prepare_multiprocess_dir
from satchel.server import create_app as create_satchel
from satchel.settings import Settings
from satchel.storage.sqlite import write_process

# The listen queue of each server process: connections the kernel completes while the process is busy.
BACKLOG = 2048
# Files a server process keeps for itself beside its connections: the database, logs, the engines' sockets.
OWN_FILES = 256
log = logging.getLogger(__name__)
PARENT_LOOK_SECONDS = 1.0  # how often a worker looks whether `satchel serve` still lives
SERVER_PID_VARIABLE = "SATCHEL_SERVE_PID"  # the process id of the `satchel serve` that started the workers
GC_YOUNG_THRESHOLD = 10_000  # allocations between two collections of the youngest generation (default 700)


class PortInUse(Exception):
    """The address and port to serve on are taken, or cannot be listened on from this machine."""


def claim_port(host: str, port: int) -> socket.socket | None:
    """Make sure nothing listens on host:port, then hold it until this server's own sockets listen there.

    The check binds without SO_REUSEPORT, which fails while any socket listens on the port (a Satchel's, whose
    sockets all have SO_REUSEPORT, or another program's). The socket returned has SO_REUSEPORT only and never
    listens: granian's own sockets bind beside it, a second check fails against it, and it keeps the port
    ours during the start (which takes a second or more) instead of leaving it free for another server's
    check. Keep it open for as long as the server runs. Port 0 (any free port) needs no claim.
    """
    if port == 0:
        return None
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    where = f"Port {port} on {host}"
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # A server that just stopped leaves connections in TIME_WAIT on the port; those do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise _refusal(where, error) from error
    claim = socket.socket(family, socket.SOCK_STREAM)
    claim.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        claim.bind(address)
    except OSError as error:  # another server checked and claimed it in the moment between
        claim.close()
        raise _refusal(where, error) from error
    return claim


def _refusal(where: str, error: OSError) -> PortInUse:
    if error.errno == errno.EADDRINUSE:
        return PortInUse(
            f"{where} is already in use (another Satchel, or another program, listens there). "
            "Stop it, or choose another port with --port or SATCHEL_PORT."
        )
    return PortInUse(f"{where} cannot be listened on: {error.strerror or error}.")


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit (worker processes inherit it); the new
    soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:  # the kernel's ceiling is then the real one
        nr_open = Path("/proc/sys/fs/nr_open")
        hard = int(nr_open.read_text()) if nr_open.exists() else soft
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError):
            return soft
        return hard
    return soft


def connection_cap(settings: Settings) -> int:
    """Most client connections one server process holds: the setting, as far as open files allow (two per
    connection, beside the process's own)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return settings.max_connections
    return max(64, min(settings.max_connections, (soft - OWN_FILES) // 2))


def granian_options(settings: Settings) -> dict[str, Any]:
    """What Satchel sets on granian beside the target: one place, so the benchmarks' reference apps get the
    same."""
    return {
        "address": settings.host,
        "port": settings.port,
        "interface": Interfaces.ASGI,
        # uvloop rather than asyncio's own loop: a GET 10% and a PUT 24% more per second (1 worker, B1's
        # store), the same loop whatever else is installed (granian's "auto" takes uvloop only if present).
        "loop": Loops.uvloop,
        "workers": settings.workers,
        "log_level": settings.log_level,
        "log_dictconfig": granian_logging(settings),
        "workers_kill_timeout": settings.shutdown_timeout_seconds,
        # A worker that dies (killed, out of memory) is started again rather than the whole server stopped;
        # one that dies again within seconds of that still stops it (granian's crash-loop rule).
        "respawn_failed_workers": True,
        "backlog": BACKLOG,
        "backpressure": connection_cap(settings),
        "http": HTTPModes.http1,
        "http1_settings": HTTP1Settings(header_read_timeout=int(settings.header_timeout_seconds * 1000)),
        # Nothing here speaks WebSocket: an upgrade request is answered as the plain request it also is,
        # rather than refused by granian with a bare 403.
        "websockets": False,
    }


def run_granian(target: str, settings: Settings, *, factory: bool = False) -> None:
    """Serve an ASGI app as Satchel is served; the benchmarks run their reference apps through it too."""
    raise_open_file_limit()
    server = Granian(target, factory=factory, **granian_options(settings))
    server.main_loop_interrupt = stop_signals.StopStaysSet(server)
    server.serve()


def run_server(settings: Settings) -> None:
    """Serve Satchel in granian's worker processes (which read their settings from the environment), with
    the folder their metrics share made first and removed after, and with several workers on SQLite the
    process that writes for them started first and stopped after."""
    # The workers watch this process by its id, known to them from their start: one still starting when it
    # died would otherwise take its new parent (init) for it, and never stop.
    os.environ[SERVER_PID_VARIABLE] = str(os.getpid())
    metrics_dir = prepare_multiprocess_dir() if settings.metrics else None
    # Several workers on SQLite: one process beside them writes for all (write_process.py).
    writer = write_process.start() if settings.workers > 1 and not settings.database else None
    stop_signals.hold_at_fork()
    try:
        run_granian("satchel.serving:create_app", settings, factory=True)
    finally:
        if writer is not None:
            write_process.stop(writer)
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def create_app() -> Any:
    """The app `satchel serve` runs (a factory granian calls in each worker process): Satchel's app behind
    the guard that times body reads and sheds idle connections."""
    stops = stop_signals.WorkerStops()
    settings = Settings()
    configure_logging(settings)
    satchel = create_satchel(settings)
    # A stop also ends the answers that would go on for long (a followed run log).
    stops.also.append(satchel.services.stopping)
    satchel.on_startup.append(stops.check)
    guard = ConnectionGuard(satchel, settings, cap=connection_cap(settings))
    guard.start_shedding()
    stop_with_parent()
    # What is made by now (modules, templates, routes, settings) lives as long as the process: out of the
    # collector's sight, a full collection scans only what requests made. Those had scanned some 70,000
    # objects, tens of milliseconds each, a few times a minute under load: 2.6 us a cached GET, and most of
    # B2's p99 (26.6 ms, 8.5 after). A request's objects die by reference counting, not by the collector, so
    # it runs less often too: the youngest generation at 10,000 instead of 700 (B2 3-5% faster).
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    return guard


def stop_with_parent() -> threading.Thread:
    """Stop this worker once the `satchel serve` that started it is gone (killed with -9, or by the kernel
    for memory): nothing would stop it then, and orphaned workers kept the port, answering beside the
    server started next on it. SIGTERM lets granian finish the requests in hand, as when the server stops.
    The server's id comes from the environment: it may have died while this worker started."""
    parent = int(os.environ.get(SERVER_PID_VARIABLE) or os.getppid())

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_LOOK_SECONDS)
        log.warning("the server process %d is gone; worker %d stops", parent, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="satchel-parent-watch", daemon=True)
    thread.start()
    return thread
