"""One rig per storage engine: start and kill servers over shared data, and check the data at rest.

The load harnesses talk HTTP only; everything engine-specific (where the data lives, how to check it for
corruption and leftovers) is here. A scale-out engine adds a rig that starts servers against its PostgreSQL
and object store and checks those, and every suite that takes `ENGINES` runs against it too.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Protocol

from tests.harness.server import Server, start_server, stop_server

HOUR = 3600.0


class Rig(Protocol):
    """A place to keep data for one engine, and the servers that run over it."""

    name: str
    root: Path

    def start(self, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Server:
        """A server over this rig's data (any number may run at once over the same data)."""
        ...

    def kill(self, server: Server) -> None:
        """SIGKILL the server and every worker process it has."""
        ...

    def stop(self, server: Server) -> None: ...

    def integrity_problems(self) -> list[str]:
        """What is structurally wrong with the data at rest (empty when sound)."""
        ...

    def leftovers(self) -> list[str]:
        """Stored things nothing refers to any more and nothing will clean up (empty when tidy)."""
        ...

    def age_leftovers(self, seconds: float) -> None:
        """Make what the engine left unreferenced look this much older, as if the crash was long ago."""
        ...


class SqliteRig:
    """The embedded engine: one SQLite file and a blob folder under a data dir."""

    name = "sqlite"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"

    def start(self, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Server:
        return start_server(self.data_dir, env=env, args=args)

    def kill(self, server: Server) -> None:
        stop_server(server, kill=True)

    def stop(self, server: Server) -> None:
        stop_server(server)

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data_dir / "satchel.db", timeout=30)

    def integrity_problems(self) -> list[str]:
        with closing(self._db()) as db:
            found = [row[0] for row in db.execute("PRAGMA integrity_check")]
        return [] if found == ["ok"] else [f"integrity_check: {line}" for line in found]

    def _blob_files(self) -> dict[str, Path]:
        blobs = self.data_dir / "blobs"
        if not blobs.exists():
            return {}
        return {
            p.name: p for sub in blobs.iterdir() if sub.is_dir() and sub.name != "tmp" for p in sub.iterdir()
        }

    def leftovers(self) -> list[str]:
        with closing(self._db()) as db:
            named = {r[0] for r in db.execute("SELECT blob FROM records WHERE blob IS NOT NULL")}
            dead = {r[0] for r in db.execute("SELECT name FROM dead_blobs")}
            uploads = {r[0] for r in db.execute("SELECT name FROM blob_uploads")}
        files = self._blob_files()
        problems = [f"record names a missing blob {name}" for name in sorted(named - set(files))]
        problems += [f"orphan blob file {files[n]}" for n in sorted(set(files) - named - dead - uploads)]
        problems += [f"dead blob not purged {name}" for name in sorted(dead)]
        problems += [f"upload never committed nor cleared {name}" for name in sorted(uploads)]
        tmp = self.data_dir / "blobs" / "tmp"
        if tmp.exists():
            problems += [f"temporary file left {p}" for p in tmp.rglob("*") if p.is_file()]
        return problems

    def age_leftovers(self, seconds: float) -> None:
        """Make uploads that never committed look that much older, as if the crash was long ago."""
        with closing(self._db()) as db, db:
            db.execute("UPDATE blob_uploads SET started_at = started_at - ?", (int(seconds * 1000),))


ENGINES: dict[str, Callable[[Path], Rig]] = {"sqlite": SqliteRig}


def wait_until(check: Callable[[], bool], seconds: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
