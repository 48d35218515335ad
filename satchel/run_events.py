"""The platform's events for the command under `satchel run`, on the WebSocket the SDKs open at
ACTOR_EVENTS_WEBSOCKET_URL.

On the platform every run gets such a socket. Without one the SDKs, which believe they are at home, hear no
`systemInfo`, so Crawlee's autoscaling sees neither CPU nor memory and runs at whatever concurrency it has
reached; and a stop can only be a signal, which leaves the crawler's requests locked in its queue until the
locks expire. So `satchel run` serves the socket itself, on loopback, at a path nobody can guess:

- `systemInfo` every second: the machine's CPU use, and the memory of the command and all its children against
  the run's memory (ACTOR_MEMORY_MBYTES), in the fields the platform sends;
- `aborting` when the run is stopped with Ctrl-C or SIGTERM, or aborted gracefully through the API (the run
  ABORTING), as the platform's graceful abort does: the command then has GRACE_SECONDS to end by itself
  before the signal follows. Crawlee for JavaScript pauses its crawler, releases its request locks and
  persists its state on it, and the Apify SDK for JavaScript exits, so a resumed run starts at once where
  this one stopped.

`persistState` is not sent: both SDKs emit it themselves, on their own timer, at home too.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
from http import HTTPStatus
from typing import Any

import psutil
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from satchel.clock import iso, now_ms
from satchel.service.validation import MEMORY_RANGE

SYSTEM_INFO_SECONDS = 1.0
GRACE_SECONDS = 30.0  # as the platform's graceful abort: the run is stopped 30 s after `aborting`
CPU_OVERLOADED = 0.95  # Crawlee's default maxUsedCpuRatio


def memory_mbytes() -> int:
    """The run's memory when none is given: a quarter of the machine's, as Crawlee takes on its own."""
    low, high = MEMORY_RANGE
    return min(high, max(low, psutil.virtual_memory().total // 4 // 2**20))


class PlatformEvents:
    """The events socket of one run, served on a thread of its own while the command runs."""

    def __init__(self, memory_mbytes: int) -> None:
        self.memory_bytes = memory_mbytes * 2**20
        self._path = "/" + secrets.token_urlsafe(16)
        self._clients: set[ServerConnection] = set()
        self._lock = threading.RLock()  # also taken in signal handlers, which may interrupt its holder
        self._stop = threading.Event()
        self._root: psutil.Process | None = None  # the command, whose process tree is measured
        self._cores = os.cpu_count() or 1
        self._machine_bytes = psutil.virtual_memory().total
        self._mem_sum = 0.0
        self._cpu_sum = 0.0
        self._cpu_peak = 0.0
        self._samples = 0
        self._server: Server = serve(
            self._serve, "127.0.0.1", 0, origins=[None], process_request=self._only_our_path, compression=None
        )
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}{self._path}"

    def __enter__(self) -> PlatformEvents:
        threading.Thread(target=self._server.serve_forever, name="events-socket", daemon=True).start()
        threading.Thread(target=self._tell_system_info, name="events-system-info", daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._server.shutdown()

    def watch(self, pid: int) -> None:
        """Measure this process, and every process it starts, as the run's memory."""
        with contextlib.suppress(psutil.Error):
            self._root = psutil.Process(pid)

    @property
    def listened(self) -> bool:
        """Whether the command has the socket open (it runs an SDK that hears events)."""
        with self._lock:
            return bool(self._clients)

    def aborting(self) -> bool:
        """Tell the command the run is being stopped; whether anybody was listening."""
        return self._send({"name": "aborting", "data": {}}) > 0  # the Python SDK refuses a null `data`

    def _only_our_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path != self._path:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
        return None

    def _serve(self, connection: ServerConnection) -> None:
        with self._lock:
            self._clients.add(connection)
        try:
            for _ in connection:  # the SDKs send nothing; reading notices the close
                pass
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._clients.discard(connection)

    def _send(self, event: dict[str, Any]) -> int:
        message = json.dumps(event)
        with self._lock:
            clients = list(self._clients)
        sent = 0
        for client in clients:
            with contextlib.suppress(ConnectionClosed):
                client.send(message)
                sent += 1
        return sent

    def _tell_system_info(self) -> None:
        psutil.cpu_percent()  # the first reading only starts the count
        while not self._stop.wait(SYSTEM_INFO_SECONDS):
            if self.listened:
                self._send({"name": "systemInfo", "data": self.system_info()})

    def system_info(self) -> dict[str, Any]:
        """A `systemInfo` event's data. CPU is in percent of one core (as the platform counts it, with
        APIFY_DEDICATED_CPUS the machine's cores); memory is the command's process tree."""
        cores = self._cores
        busy = psutil.cpu_percent() / 100  # of the whole machine, since the last reading
        used = self._tree_memory()
        self._samples += 1
        self._mem_sum += used
        self._cpu_sum += busy
        self._cpu_peak = max(self._cpu_peak, busy)
        return {
            "createdAt": iso(now_ms()),
            "cpuCurrentUsage": busy * cores * 100,
            "cpuAvgUsage": self._cpu_sum / self._samples * cores * 100,
            "cpuMaxUsage": self._cpu_peak * cores * 100,
            "isCpuOverloaded": busy > CPU_OVERLOADED,
            "memCurrentBytes": used,
            "memAvgBytes": round(self._mem_sum / self._samples),
            # What the Python SDK takes for the run's whole memory, and Crawlee for JavaScript the machine's.
            "memMaxBytes": self.memory_bytes,
            "memTotalBytes": self._machine_bytes,
        }

    def _tree_memory(self) -> int:
        root = self._root
        if root is None:
            return 0
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total
