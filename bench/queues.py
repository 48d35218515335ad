"""B8, request queues: add N requests, then 8 concurrent clients each lock the head (25 at a time) and mark
every locked request handled, until the queue is empty; requests/s end to end, and a check that every request
was handled exactly once. apify-client against Satchel, beside Crawlee's FileSystemStorageClient doing the
same work locally with 8 asyncio workers.

    python -m bench.run --only B8            # this figure alone
    python -m bench.run --only B8 --smoke --out /tmp/b.md
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apify_client import ApifyClientAsync

from bench import servers
from bench.backends import EMBEDDED, SCALE, backends, missing_backends
from bench.datasets import cpu_seconds, crawlee_missing
from bench.figures import Figure, Plan, Row, ratio
from bench.harness import watched

if TYPE_CHECKING:
    from apify_client._typeddicts import RequestResourceCamelDict

WORKERS = 8
LOCK_LIMIT = 25
LOCK_SECS = 60
TIMEOUT = 600  # seconds for the handling: a queue that never empties fails the figure, not hangs the bench


def requests_for(plan: Plan) -> int:
    return 200 if plan.smoke else 5000


def url(i: int) -> str:
    return f"https://shop.example/products/{i:09d}"


@dataclass
class Result:
    """One side's run: seconds to add, seconds to lock and handle, and what was handled how often."""

    n: int
    add_s: float = 0.0
    handle_s: float = 0.0
    handled: Counter[str] = field(default_factory=Counter)
    reported_handled: int = 0  # the queue's own count afterwards
    reported_pending: int = 0
    client_cpu: float = 0.0  # CPU seconds of add + handle: this process, and the server's processes
    server_cpu: float = 0.0

    @property
    def exactly_once(self) -> bool:
        every = set(self.handled) == {url(i) for i in range(self.n)}
        return every and set(self.handled.values()) == {1} and self.reported_handled == self.n

    def rate(self, seconds: float) -> float:
        return self.n / seconds if seconds else float("nan")

    @property
    def end_to_end(self) -> float:
        return self.rate(self.add_s + self.handle_s)

    def cell(self) -> str:
        server = f"server {self.server_cpu:.1f} s, " if self.server_cpu else ""
        return (
            f"{self.end_to_end:,.0f} req/s ({self.add_s + self.handle_s:.1f} s; adding"
            f" {self.rate(self.add_s):,.0f} req/s, handling {self.rate(self.handle_s):,.0f} req/s; CPU:"
            f" {server}client {self.client_cpu:.1f} s)"
        )

    def check(self) -> str:
        twice = sum(1 for c in self.handled.values() if c > 1)
        return (
            f"{len(self.handled):,} of {self.n:,} handled, {twice} more than once; the queue counts"
            f" {self.reported_handled:,} handled, {self.reported_pending:,} pending"
        )


# --- Satchel, through the official async Python client: 8 clients, each with its own clientKey


def _client(base: str) -> ApifyClientAsync:
    return ApifyClientAsync(token=servers.TOKEN, api_url=base, api_public_url=base)


async def _satchel_worker(base: str, queue_id: str, key: str, handled: Counter[str]) -> None:
    rq = _client(base).request_queue(queue_id, client_key=key)
    while True:
        head = await rq.list_and_lock_head(lock_duration=timedelta(seconds=LOCK_SECS), limit=LOCK_LIMIT)
        if not head.items:
            if head.queue_has_locked_requests:  # another client still works on its share
                await asyncio.sleep(0.02)
                continue
            return
        for locked in head.items:
            done: RequestResourceCamelDict = {
                "id": locked.id,
                "uniqueKey": locked.unique_key,
                "url": locked.url,
                "method": "GET",
                "handledAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
            await rq.update_request(done)
            handled[locked.unique_key] += 1


async def _satchel(server: servers.Server, n: int) -> Result:
    base, pids = server.url, server.proc.tree()
    result = Result(n)
    client = _client(base)
    cpu, server_cpu = time.process_time(), cpu_seconds(pids)
    queue = await client.request_queues().get_or_create(name="b8")
    adder = client.request_queue(queue.id, client_key="adder")
    requests: list[Any] = [{"url": url(i), "uniqueKey": url(i), "method": "GET"} for i in range(n)]
    began = time.perf_counter()
    added = await adder.batch_add_requests(requests)
    result.add_s = time.perf_counter() - began
    assert not added.unprocessed_requests, added.unprocessed_requests[:3]
    began = time.perf_counter()
    workers = (_satchel_worker(base, queue.id, f"worker-{k}", result.handled) for k in range(WORKERS))
    await asyncio.wait_for(asyncio.gather(*workers), TIMEOUT)
    result.handle_s = time.perf_counter() - began
    result.client_cpu, result.server_cpu = time.process_time() - cpu, cpu_seconds(pids) - server_cpu
    after = await client.request_queue(queue.id).get()
    if after is not None:
        result.reported_handled, result.reported_pending = (
            after.handled_request_count,
            after.pending_request_count,
        )
    return result


# --- Crawlee's file-system storage client: one RequestQueue, 8 asyncio workers


async def _crawlee(root: Path, n: int) -> Result:
    from crawlee import Request
    from crawlee.configuration import Configuration
    from crawlee.storage_clients import FileSystemStorageClient
    from crawlee.storages import RequestQueue

    result = Result(n)
    config = Configuration(storage_dir=str(root), purge_on_start=False)
    rq = await RequestQueue.open(name="b8", storage_client=FileSystemStorageClient(), configuration=config)
    requests = [Request.from_url(url(i), unique_key=url(i)) for i in range(n)]
    cpu = time.process_time()
    began = time.perf_counter()
    await rq.add_requests(
        requests,
        batch_size=1000,
        wait_time_between_batches=timedelta(0),  # its default waits 1 s between batches
        wait_for_all_requests_to_be_added=True,
    )
    result.add_s = time.perf_counter() - began

    async def worker() -> None:
        while True:
            request = await rq.fetch_next_request()
            if request is None:
                if await rq.is_finished():
                    return
                await asyncio.sleep(0.02)
                continue
            await rq.mark_request_as_handled(request)
            result.handled[request.unique_key] += 1

    began = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(WORKERS))), TIMEOUT)
    result.handle_s = time.perf_counter() - began
    result.client_cpu = time.process_time() - cpu
    meta = await rq.get_metadata()
    result.reported_handled, result.reported_pending = meta.handled_request_count, meta.pending_request_count
    return result


# --- the figure


def b8(plan: Plan) -> Figure:
    n = requests_for(plan)
    fig = Figure(
        "B8",
        f"request queue: add {n:,} requests, then {WORKERS} clients lock the head ({LOCK_LIMIT} at a time)"
        " and mark each request handled until the queue is empty",
    )
    began = time.perf_counter()
    sat: dict[str, Result] = {}
    no_scale = missing_backends()
    with contextlib.ExitStack() as stack:
        engines: dict[str, dict[str, str]] = {EMBEDDED: {}}
        if not no_scale:
            engines[SCALE] = stack.enter_context(backends(plan)).node_env
        for engine, env in engines.items():
            data_dir = plan.work / f"b8-{engine}"
            shutil.rmtree(data_dir, ignore_errors=True)
            with (
                servers.satchel(data_dir, workers=1, cpus=None, logs=plan.logs, env=env) as server,
                watched(server.proc, f"add, then lock and handle, {engine}", fig.memory),
            ):
                sat[engine] = asyncio.run(_satchel(server, n))
            shutil.rmtree(data_dir, ignore_errors=True)
    why = crawlee_missing()
    crawlee: Result | None = None
    if not why:
        root = plan.work / "b8-crawlee"
        shutil.rmtree(root, ignore_errors=True)
        crawlee = asyncio.run(_crawlee(root, n))
        shutil.rmtree(root, ignore_errors=True)
    ref = crawlee.cell() if crawlee else f"(skipped: {why})"
    for engine, result in sat.items():
        r = f"{ratio(result.end_to_end, crawlee.end_to_end):.1f}x" if crawlee else ""
        what = f"end to end, {WORKERS} clients, {engine}"
        fig.rows.append(Row("B8", what, result.cell(), "Crawlee: " + ref, r, "(reported)", None))
    for engine, result in sat.items():
        fig.rows.append(
            Row(
                "B8",
                f"every request handled exactly once, {engine}",
                result.check(),
                "Crawlee: " + (crawlee.check() if crawlee else ref),
                "",
                "exactly once",
                result.exactly_once and (crawlee is None or crawlee.exactly_once),
            )
        )
    fig.notes += _notes(n, why, no_scale)
    fig.seconds = time.perf_counter() - began
    return fig


def _notes(n: int, why: str, no_scale: str) -> list[str]:
    engines = (
        f"on the embedded engine ({EMBEDDED}), then on PostgreSQL and S3 ({SCALE}: the throwaway PostgreSQL"
        " cluster and SeaweedFS of B9, bench/backends.py)"
        if not no_scale
        else f"on the embedded engine ({EMBEDDED}; {SCALE} skipped: {no_scale})"
    )
    notes = [
        "Command: `python -m bench.run --only B8`. Requests are GETs of distinct URLs (uniqueKey = url)."
        " Rates are requests over the client's wall-clock seconds; CPU is the user + system time of the"
        " server's processes and of the bench process (the clients) over the same span.",
        f"Satchel: `satchel serve --workers 1` {engines}, over loopback. One `ApifyClientAsync` adds the"
        " requests with `request_queue(id, client_key='adder').batch_add_requests(requests)` (its default:"
        f" batches of 25, 5 in flight); then {WORKERS} `ApifyClientAsync` instances in one process (each its"
        " own connection pool and clientKey) loop"
        f" `list_and_lock_head(lock_duration=timedelta(seconds={LOCK_SECS}), limit={LOCK_LIMIT})` and"
        " `update_request({id, uniqueKey, url, method, handledAt})` for each locked request, until the head"
        " is empty and `queueHasLockedRequests` is false. Clients and server share the machine's 2 cores.",
        "Exactly once: every uniqueKey handled is counted on the client side (each must appear once, all"
        f" {n:,} of them), and the queue's own handled count is read back afterwards"
        " (`request_queue(id).get()`; Crawlee: `get_metadata()`).",
    ]
    if why:
        notes.append(f"Crawlee was skipped: {why}.")
    else:
        notes.append(
            "Crawlee 1.11: `RequestQueue.open(name='b8', storage_client=FileSystemStorageClient(),"
            " configuration=Configuration(storage_dir=DIR))` in one process on the local disk;"
            " `add_requests(requests, batch_size=1000, wait_time_between_batches=timedelta(0),"
            f" wait_for_all_requests_to_be_added=True)`, then {WORKERS} asyncio workers loop"
            " `fetch_next_request()` and `mark_request_as_handled(request)` until `is_finished()`. Crawlee's"
            " local queue has no locks (one process owns it): its figure is the ceiling of a single crawler"
            " on one disk, where Satchel's queue is shared by any number of clients and nodes."
        )
    return notes
