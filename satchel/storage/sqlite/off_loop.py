"""The work a Database runs on its connections from threads other than the event loop's (checkpoints, counts).

Closing a connection while another thread is inside SQLite on it crashes the process (the CPython module frees
what that thread is using). The loop's own reads cannot meet close(), which runs on the loop; these can, since
an awaiting task cancelled at shutdown leaves its thread running. So Database.close() shuts this gate first:
it waits for the work inside to finish, and nothing enters after.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Shut(Exception):
    """The database was closed (or is closing) before this work could start."""


class OffLoop:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._inside = 0
        self._shut = False

    def run(self, work: Callable[[], T]) -> T:
        """work(), unless the gate is shut (Shut); close() waits until it returns."""
        with self._changed:
            if self._shut:
                raise Shut
            self._inside += 1
        try:
            return work()
        finally:
            with self._changed:
                self._inside -= 1
                self._changed.notify_all()

    def shut(self) -> None:
        """Let nothing more in, and wait (blocking) until what is inside has left."""
        with self._changed:
            self._shut = True
            self._changed.wait_for(lambda: self._inside == 0)

    def open(self) -> None:
        with self._changed:
            self._shut = False
