"""What the scale-out tests share (tests/test_scale_out*.py): nodes on one deployment (PostgreSQL and an S3
bucket), clients for them, the CLI against it, their logs, and the figures measured on the way, printed after
the run (tests/harness/summaries.py)."""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from apify_client import ApifyClient

from tests.harness.backends import Backends
from tests.harness.cli import run_cli
from tests.harness.server import TOKEN, Server, start_server, stop_server
from tests.harness.summaries import summary

KIB = 1024
INLINE_MAX = 128 * KIB  # the default: bodies above it are blobs (S3 objects, or files)
LARGE = 160 * KIB
# Reads are counted in memory and flushed once a second by each process (service.USAGE_FLUSH_SECONDS).
USAGE_DEADLINE = 2.5
# A change made by another process (the CLI) reaches a node through LISTEN/NOTIFY.
NOTIFY_DEADLINE = 2.0
# How many times a change is made and undone on A and checked on B's very next request: a node that serves
# from a cache its notification has not reached yet showed on about 2% of such checks.
CHANGE_CYCLES = 30
# How long a request may wait on a backend before the node answers 503, in the outage tests.
BACKEND_TIMEOUT = 2.0
# What a request may take beyond that timeout while a backend is down or frozen: the HTTP round trip and
# scheduling on a loaded 2-core machine (up to 2.0 s in all seen with a 2 s timeout, once 3.47 s with both
# cores kept busy by other processes, once 3.73 s in a full `make test` on a slow day). The exact bound is
# checked in-process, at the end of this module; here it only tells a bounded wait from a hang.
TIMEOUT_SLACK = 2.5
# How long a node may take to serve again once its backend is back (the pool reconnects on the next acquire;
# the change feed's listener reconnects with a backoff of at most 5 s, but requests do not wait for it).
RECOVERY_DEADLINE = 10.0
MEASURED: dict[str, float] = {}  # figures for the report at the end of the module


def measured(name: str, seconds: float) -> None:
    MEASURED[name] = round(seconds, 3)
    print(f"measured {name}: {seconds:.3f} s")


@summary("scale-out figures (seconds)")
def measured_summary() -> list[str]:
    return [f"  {name}: {seconds}" for name, seconds in sorted(MEASURED.items())]


# --- helpers


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def body_for(key: str, size: int) -> bytes:
    """A body that only this key and size produce, so a torn or swapped record cannot pass for it.

    Random bytes: the official client gzips what it sends, and a body that compresses would be stored
    inline however large it was.
    """
    return random.Random(f"{key}:{size}").randbytes(size)


def start_nodes(
    root: Path, env: dict[str, str], *, count: int = 2, token: str = TOKEN, together: bool = False
) -> list[Server]:
    """`count` nodes, each a `satchel serve` with its own data dir, started in parallel."""
    barrier = threading.Barrier(count)

    def one(index: int) -> Server:
        if together:
            barrier.wait(timeout=30)
        return start_server(root / f"node{index}" / "data", token=token, env=env)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(one, index) for index in range(count)]
        started: list[Server] = []
        errors: list[BaseException] = []
        for future in futures:
            try:
                started.append(future.result())
            except BaseException as exc:
                errors.append(exc)
    if errors:
        for node in started:
            stop_server(node)
        raise errors[0]
    return started


def stop_nodes(nodes: list[Server]) -> None:
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(stop_server, nodes))


def node_log(node: Server) -> str:
    port = node.base_url.rsplit(":", 1)[1]
    return (node.data_dir.parent / f"server-{port}.log").read_text(errors="replace")


def assert_no_internal_errors(*nodes: Server) -> None:
    """No request ended in a 500 (the API logs each as "unexpected error"), nor escaped the app."""
    for node in nodes:
        log = node_log(node)
        for sign in ("unexpected error", "Application callable raised an exception"):
            assert sign not in log, log[max(0, log.index(sign) - 200) :][:5000]


def http_client(node: Server, token: str = TOKEN) -> httpx.Client:
    # The timeout is far above any node's own: a request that hangs shows as a long request.
    return node.client(token, timeout=30)


def apify(node: Server, token: str = TOKEN) -> ApifyClient:
    # No retries: a 5xx or a wrong answer must show on the request that got it.
    return ApifyClient(token, api_url=node.base_url, api_public_url=node.base_url, max_retries=0)


def cli(where: Deployment, *args: str) -> str:
    """`satchel ARGS --database DSN --blob-store URL`, as a separate process (as an operator runs it)."""
    workdir = where.root / "cli"
    workdir.mkdir(parents=True, exist_ok=True)
    options = [
        "--database",
        where.database,
        *(["--blob-store", where.blob_store] if where.blob_store else []),
    ]
    env = {**where.env, "SATCHEL_LOG_LEVEL": "warning"}
    return run_cli(*args, *options, data_dir=workdir / "data", env=env, cwd=workdir).stdout


@dataclass
class Deployment:
    """Nodes over one database and one bucket."""

    root: Path
    database: str
    blob_store: str
    env: dict[str, str]  # what a node or the CLI needs beyond the locations (S3 credentials)
    nodes: list[Server] = field(default_factory=list)

    def node_env(self, **extra: str) -> dict[str, str]:
        return {
            "SATCHEL_DATABASE": self.database,
            "SATCHEL_BLOB_STORE": self.blob_store,
            **self.env,
            **extra,
        }


def deployment(combo: str, backends: Backends, root: Path) -> Deployment:
    where = backends.locations(combo)
    return Deployment(root, where["database"], where["blob_store"], backends.env(combo))
