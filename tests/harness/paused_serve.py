"""`satchel serve` whose workers pause themselves (SIGSTOP) at one moment of their start, for a test to send a
signal that reaches them there, as a busy machine may pause a process anywhere. Run as
`python -m tests.harness.paused_serve MOMENT serve ARGS...`; the rest is `satchel` itself.

The moments are where a starting worker's event loop does not run: granian calls its own code there, found by
name in the worker (a granian that renames it fails the tests that use this at once, since no worker pauses).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import granian.asgi
import granian.server.mp

from satchel.cli import main

# granian has set up the loop's signals and not yet run the app's startup on it.
BEFORE_STARTUP = "before-startup"
# After the app's startup, as granian makes its server, before it runs the loop to serve.
STARTED = "started"


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


if __name__ == "__main__":
    chosen = sys.argv.pop(1)
    # Every process forked from here is patched: granian's workers, and the one that makes the admin, which
    # never calls these.
    os.register_at_fork(after_in_child=lambda: _in_worker(chosen))
    main(prog_name="satchel")
