"""A real PostgreSQL for tests: a throwaway cluster on a free loopback port, run as the `postgres` user.

Plain functions, no pytest fixtures: a test module starts one cluster (start_postgres), makes a database per
test (create_database, a copy of template0, some milliseconds) and can stop and start the same cluster on the
same port and data to test outages.

The cluster's own files (data, socket) live in a folder of /tmp that only the postgres user can enter, with
root/pgdata a link to the data: pytest keeps its temporary folders closed to other users (and closes them
again whenever another session starts), so the cluster cannot live under them. Settings trade durability for
speed (fsync off): the data is scratch, though it survives a crash of PostgreSQL itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import asyncpg

USER = "postgres"
PR_SET_PDEATHSIG = 1
# Where Debian's packages put the binaries when they are not on PATH.
BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
_LAUNCHER = ThreadPoolExecutor(1, thread_name_prefix="postgres-launcher")
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    # No fsync (the OS cache survives a crash of PostgreSQL, which is all tests need), but commits still
    # reach the OS before they are acknowledged: without synchronous_commit a stop(immediate=True) would lose
    # the last writes.
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
    "log_connections": "off",
}


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    raise RuntimeError(f"PostgreSQL's {name} was not found on PATH or in /usr/lib/postgresql/*/bin.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gid() -> int:
    return pwd.getpwnam(USER).pw_gid


def _die_with_parent() -> None:
    # A test run that is killed must not leave a cluster behind.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=USER,
            group=_gid(),
            extra_groups=[],
            # Only prctl, after the switch to postgres (which would clear it).
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )


def _chown(path: Path) -> None:
    entry = pwd.getpwnam(USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class Postgres:
    root: Path  # logs, and pgdata: a link to the data
    home: Path  # the cluster's own folder (data and socket), owned by the postgres user
    port: int
    process: subprocess.Popen[bytes] | None = None
    startup_seconds: float = 0.0  # initdb and the first start, as measured by start_postgres

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the cluster (again) on its port and data; returns once it accepts connections."""
        if self.process is not None:
            return
        args = [_binary("postgres"), "-D", str(self.data), "-p", str(self.port)]
        args += ["-c", f"unix_socket_directories={self.home}"]
        for name, value in SETTINGS.items():
            args += ["-c", f"{name}={value}"]
        # Started from one long-lived thread: the parent-death signal follows the thread that forked, and a
        # test may start the cluster from a worker thread that ends soon after (asyncio.to_thread).
        self.process = _LAUNCHER.submit(_spawn, args, self.log).result()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        # postmaster.pid's eighth line reads "ready" once connections are accepted (what pg_ctl -w waits for).
        deadline = time.monotonic() + timeout
        pid_file = self.data / "postmaster.pid"
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(
                    f"PostgreSQL exited at start; see {self.log}:\n{self.log.read_text()[-2000:]}"
                )
            with contextlib.suppress(FileNotFoundError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    return
            time.sleep(0.01)
        self.stop(immediate=True)
        raise RuntimeError(f"PostgreSQL did not become ready in {timeout} s; see {self.log}")

    def stop(self, *, immediate: bool = False, timeout: float = 30.0) -> None:
        """Stop the cluster: a fast shutdown (clients get "admin shutdown"), or an immediate one (a crash)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def pause(self) -> None:
        """Freeze the cluster, the postmaster and every backend: connections are accepted (by the kernel) and
        queries sent, and nothing answers until resume(), as with a database cut off by the network.

        The postmaster first, and its children listed only then: one forked while the list was made would
        be left running."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, signum: signal.Signals) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):  # ended since it was listed: nothing to signal
                os.kill(pid, signum)

    def _pids(self) -> list[int]:
        """The postmaster and its children (no new ones are forked while it is frozen)."""
        assert self.process is not None
        postmaster = self.process.pid
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # The fourth field is the parent's id; the command name before it may hold spaces.
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(stat.parent.name))
        return [postmaster, *children]

    def create_database(self, name: str, template: str = "template0") -> str:
        """A fresh database, a copy of `template` (by default template0, empty; or a database of this cluster
        nobody is connected to); returns its DSN. Call it outside an event loop."""

        async def create() -> None:
            conn = await asyncpg.connect(self.dsn(), timeout=30)
            try:
                # A server just stopped may leave its sessions on the template for some milliseconds more.
                for _ in range(100):
                    try:
                        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                        break
                    except asyncpg.ObjectInUseError:
                        await asyncio.sleep(0.05)
                else:
                    raise RuntimeError(f"database {template} is still in use")
            finally:
                await conn.close()

        asyncio.run(create())
        return self.dsn(name)


def start_postgres(root: Path) -> Postgres:
    """initdb a cluster (owned by the postgres user) and start it on a free loopback port."""
    began = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="satchel-pg-"))
    _chown(home)
    pg = Postgres(root, home, _free_port())
    try:
        (root / "pgdata").symlink_to(pg.data)
        initdb = [_binary("initdb"), "-D", str(pg.data), "-U", USER, "--auth=trust", "-E", "UTF8"]
        initdb += ["--locale=C", "--no-sync", "--no-instructions"]
        with open(root / "initdb.log", "wb") as log:
            subprocess.run(
                initdb, check=True, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                user=USER, group=_gid(), extra_groups=[],
            )  # fmt: skip
        pg.start()
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    pg.startup_seconds = time.monotonic() - began
    return pg


def stop_postgres(pg: Postgres) -> None:
    """Stop the cluster for good and remove its files (its log stays under root)."""
    pg.stop()
    shutil.rmtree(pg.home, ignore_errors=True)
