"""`satchel serve` that pauses itself (SIGSTOP) at one moment, for a test to send a signal that reaches it
there, as a busy machine may pause a process anywhere. Run as
`python -m tests.harness.paused_serve MOMENT serve ARGS...`; the rest is `satchel` itself.

The moments are in granian's code, found by the names of what it calls there (a granian that renames them
fails the tests that use this at once, since nothing pauses): two where a starting worker's event loop does
not run, and one where the server process, woken for a worker that died, has looked whether it was told to
stop and not yet cleared what woke it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import granian.asgi
import granian.server.common
import granian.server.mp

from satchel.cli import main

# granian has set up the loop's signals and not yet run the app's startup on it.
BEFORE_STARTUP = "before-startup"
# After the app's startup, as granian makes its server, before it runs the loop to serve.
STARTED = "started"
# In the server process, woken for a worker that died: granian reads when it last started that worker (its
# crash-loop rule) after it looked for a stop and before it clears what woke it.
WOKEN = "woken"


class _PausingTimes(dict[int, float]):
    """granian's record of when it started each worker again, which pauses the process when it is read."""

    def get(self, key: int, default: Any = None) -> Any:
        os.kill(os.getpid(), signal.SIGSTOP)
        # A signal sent meanwhile is delivered to whichever thread runs first; Python's handler for it runs
        # on this one, by the end of this wait whatever the thread, and so before granian goes on.
        time.sleep(0.1)
        return super().get(key, default)


def _pausing(call: Callable[..., Any]) -> Callable[..., Any]:
    def paused(*args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGSTOP)
        return call(*args, **kwargs)

    return paused


def _in_worker(moment: str) -> None:
    # granian's worker looks both up when it calls them: the startup on the lifespan object it made, the
    # server's class in its module.
    if moment == BEFORE_STARTUP:
        lifespan = granian.asgi.LifespanProtocol
        setattr(lifespan, "startup", _pausing(lifespan.startup))  # noqa: B010 (mypy refuses a method assigned by name)
    elif moment == STARTED:
        server = vars(granian.server.mp)
        server["ASGIWorker"] = _pausing(server["ASGIWorker"])
    else:
        raise SystemExit(f"no such moment: {moment}")


def _in_server() -> None:
    server_class = granian.server.common.AbstractServer
    startup: Callable[..., None] = server_class.startup

    def paused_startup(self: Any, *args: Any) -> None:
        self.respawned_wrks = _PausingTimes()
        startup(self, *args)

    setattr(server_class, "startup", paused_startup)  # noqa: B010 (mypy refuses a method assigned by name)


if __name__ == "__main__":
    chosen = sys.argv.pop(1)
    if chosen == WOKEN:
        _in_server()
    else:
        # Every process forked from here is patched: granian's workers, and the one that makes the admin,
        # which never calls these.
        os.register_at_fork(after_in_child=lambda: _in_worker(chosen))
    main(prog_name="satchel")
