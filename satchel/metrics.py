"""Prometheus metrics for /metrics: what the server does (requests, bytes, latencies, refusals, sweeps) and
what it holds (storages, records, items, bytes).

A server runs several worker processes, and a scrape reaches one of them, so counters are kept in
prometheus_client's multiprocess mode: each process adds to memory-mapped files in one folder
(PROMETHEUS_MULTIPROC_DIR, emptied by `satchel serve` before the workers start, or a new temporary folder),
and a scrape on any worker sums every process's files. Without that folder (the app run in a test process)
counters live in this process. An increment there is a locked write to a mapped page; five of them per request
cost a fifth of a worker's GETs, so each request only adds to plain per-process tallies, which are written to
the counters once a second (FLUSH_SECONDS) and before this process answers a scrape: another worker's last
second may show on the next scrape.

What is stored is counted by the database when scraped (a few grouped queries, the records' index read
whole), not kept by the workers: a scrape every few seconds costs little, and its figures are never stale.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from satchel.storage import Storage, StorageTotals

log = logging.getLogger(__name__)
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From a cached GET (a millisecond) to a large upload (a minute).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
FLUSH_SECONDS = 1.0  # how often a process writes its tallies to the shared counters
STORED_TIMEOUT = 5.0  # seconds the count may take; past it the scrape answers without it
# The route label of a path that names no route: one label, however many such paths are asked for.
UNMATCHED = "unmatched"
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))


def prepare_multiprocess_dir() -> Path:
    """The folder the workers' counters go in, empty (counts of an earlier run must not add to this one's),
    and named in the environment the worker processes inherit: PROMETHEUS_MULTIPROC_DIR if set (emptied),
    else a new temporary folder. The caller removes it when the server stops."""
    chosen = os.environ.get(MULTIPROC_VARIABLE)
    if chosen:
        folder = Path(chosen)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, mode=0o700)
    else:
        folder = Path(tempfile.mkdtemp(prefix="satchel-metrics-"))
    os.environ[MULTIPROC_VARIABLE] = str(folder)
    return folder


class Metrics:
    """The counters one server process adds to, and the page a scrape gets."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        folder = os.environ.get(MULTIPROC_VARIABLE)
        self.multiprocess = bool(folder)
        if self.multiprocess and not values.ValueClass._multiprocess:
            # prometheus_client chose where values live when first imported, which may have been before the
            # folder was named (in the process the workers are forked from): choose again.
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        # In multiprocess mode values live in the folder and are read back from there for a scrape.
        own = None if self.multiprocess else self.registry
        self.requests = Counter(
            "satchel_http_requests", "Requests answered, by route template, method and status.",
            ("route", "method", "status"), registry=own,
        )  # fmt: skip
        self.latency = Histogram(
            "satchel_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template.",
            ("route",), buckets=LATENCY_BUCKETS, registry=own,
        )  # fmt: skip
        self.bytes_in = Counter(
            "satchel_http_request_bytes", "Request body bytes received, by route template.", ("route",),
            registry=own,
        )  # fmt: skip
        self.bytes_out = Counter(
            "satchel_http_response_bytes", "Response body bytes sent, by route template.", ("route",),
            registry=own,
        )  # fmt: skip
        self.rejections = Counter(
            "satchel_rate_limit_rejections",
            "Requests refused with 429, by the limit they went over (resource: per store, or per store's"
            " records; global: per user or IP).",
            ("limit",), registry=own,
        )  # fmt: skip
        self.sweeps = Counter(
            "satchel_retention_sweeps", "Runs of the retention sweeper, by outcome (ok, failed).",
            ("outcome",), registry=own,
        )  # fmt: skip
        self.swept = Counter(
            "satchel_retention_deleted_storages", "Expired unnamed storages the sweeper deleted.",
            registry=own,
        )  # fmt: skip
        for limit in ("resource", "global"):  # shown as 0 before the first refusal
            self.rejections.labels(limit)
        for outcome in ("ok", "failed"):
            self.sweeps.labels(outcome)
        if self.multiprocess:
            MultiProcessCollector(self.registry, path=folder)  # type: ignore[no-untyped-call]
        self.stored = _Stored(storage)
        self.registry.register(self.stored)
        # Per (route, method, status): the children to add to, found once (a labels() call takes a lock and
        # builds a key each time), and what was counted since the last flush.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram, Counter, Counter]] = {}
        self._tallies: dict[tuple[str, str, int], _Tally] = {}
        self._bounds = (*LATENCY_BUCKETS, float("inf"))  # the histogram's buckets, +Inf as it adds
        self._flusher: asyncio.Task[None] | None = None

    def request(  # noqa: PLR0917 - called once per request: positional is the cheap call
        self, route: str, method: str, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        """Count one answered request (in this process's tallies, written out by flush())."""
        key = (route, method, status)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally(len(self._bounds))
        tally.count += 1
        tally.seconds += seconds
        tally.buckets[bisect.bisect_left(self._bounds, seconds)] += 1  # the first bound >= it, as observe()
        tally.bytes_in += bytes_in
        tally.bytes_out += bytes_out

    def flush(self) -> None:
        """Add the tallies to the counters and the latency histogram, and start new ones."""
        tallies, self._tallies = self._tallies, {}
        for key, tally in tallies.items():
            requests, latency, received, sent = self._children_of(key)
            requests.inc(tally.count)
            # Histogram has no bulk observe: its sum and per-bucket values, as observe() itself adds to them.
            latency._sum.inc(tally.seconds)
            for value, count in zip(latency._buckets, tally.buckets, strict=True):
                if count:
                    value.inc(count)
            if tally.bytes_in:
                received.inc(tally.bytes_in)
            if tally.bytes_out:
                sent.inc(tally.bytes_out)

    def _children_of(self, key: tuple[str, str, int]) -> tuple[Counter, Histogram, Counter, Counter]:
        children = self._children.get(key)
        if children is None:
            route, method, status = key
            label = method if method in METHODS else "other"
            children = self._children[key] = (
                self.requests.labels(route, label, str(status)),
                self.latency.labels(route),
                self.bytes_in.labels(route),
                self.bytes_out.labels(route),
            )
        return children

    def start(self) -> None:
        """Write the tallies out every FLUSH_SECONDS while the app runs (in each worker)."""
        self._flusher = asyncio.create_task(self._flush_every())

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        self.flush()

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.flush()

    def rejected(self, limit: str) -> None:
        self.rejections.labels(limit).inc()

    def sweep_done(self, deleted: int | None) -> None:
        """Count a run of the retention sweeper: the storages it deleted, or None when it failed."""
        self.sweeps.labels("failed" if deleted is None else "ok").inc()
        if deleted:
            self.swept.inc(deleted)

    async def render(self) -> bytes:
        """The exposition page: every process's counters, and what is stored."""
        self.flush()
        await self.stored.refresh()
        return await asyncio.to_thread(generate_latest, self.registry)  # reads every process's files


class _Tally:
    """What one (route, method, status) counted since the last flush."""

    __slots__ = ("buckets", "bytes_in", "bytes_out", "count", "seconds")

    def __init__(self, buckets: int) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * buckets
        self.bytes_in = 0
        self.bytes_out = 0


class _Stored(Collector):
    """What the storage holds, as counted by the database at the last refresh."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.totals: StorageTotals | None = None

    async def refresh(self) -> None:
        try:
            async with asyncio.timeout(STORED_TIMEOUT):
                self.totals = await self.storage.stores.totals()
        except Exception as error:  # the page goes out without these; /ready tells what is wrong
            log.warning("counting what is stored failed: %s", error)
            self.totals = None

    def collect(self) -> Iterator[Metric]:
        totals = self.totals
        if totals is None:
            return
        storages = GaugeMetricFamily("satchel_storages", "Storages, by kind.", labels=("kind",))
        stored = GaugeMetricFamily(
            "satchel_stored_bytes",
            "Bytes stored (records, items, requests as counted in the storages' stats), by kind.",
            labels=("kind",),
        )
        for kind, count, size in totals.storages:
            storages.add_metric((kind,), count)
            stored.add_metric((kind,), size)
        yield storages
        yield stored
        yield GaugeMetricFamily("satchel_records", "Key-value store records.", value=totals.records)
        yield GaugeMetricFamily("satchel_dataset_items", "Dataset items.", value=totals.dataset_items)
        yield GaugeMetricFamily("satchel_queue_requests", "Request queue requests.", value=totals.requests)
