"""The figures of issue 4 (B1-B6): each starts its servers, measures Satchel beside its references in one
run, and returns rows for the report."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench import profile, seed, servers
from bench.harness import Load, Memory, Series, interleaved, load_average, watched, which

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
CACHE_VERSION = "1"  # bump when a cached store's shape changes
MIXED_P99_MS = 50.0  # B6's target on the embedded engine (issue 15)


@dataclass
class Plan:
    """How big and how long: the full run of issue 4, or a smoke run of a few seconds."""

    work: Path
    smoke: bool = False
    seconds: float = 6.0
    reps: int = 3
    warmup: float = 2.0
    keys: int = 100_000
    list_groups: int = 1000  # B3's large store: this many groups of 1000 keys
    huge_bytes: int = GIB
    large_records: int = 64  # B9: records of 1 MiB (blobs: S3 objects, or files) read by random key
    mixed_seconds: float = 60.0
    mixed_keys: int = 5000
    scale_mixed_seconds: float = 20.0  # B9's mixed load, per engine and node count (B6 runs mixed_seconds)
    profile_seconds: float = 8.0  # py-spy on Satchel under the B1 and B2 loads; 0: no profile
    workers: tuple[int, ...] = (1, 2)
    pin: bool = False
    with_peers: bool = True

    @classmethod
    def smoke_run(cls, work: Path) -> Plan:
        return cls(
            work=work,
            smoke=True,
            seconds=1,
            reps=1,
            warmup=0,
            keys=2000,
            list_groups=3,
            huge_bytes=8 * MIB,
            large_records=4,
            mixed_seconds=1,
            mixed_keys=200,
            scale_mixed_seconds=1,
            workers=(1,),
            profile_seconds=0,
        )

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    @property
    def cache(self) -> Path:
        return self.work / "cache"

    def server_cpus(self, workers: int) -> str | None:
        """With one server process and pinning asked for: the server on CPU 0, wrk on CPU 1."""
        return "0" if self.pin and workers == 1 else None

    def wrk_cpus(self, workers: int) -> str | None:
        return "1" if self.pin and workers == 1 else None


@dataclass
class Row:
    """One line of the summary table."""

    figure: str
    what: str
    satchel: str
    reference: str
    ratio: str
    target: str
    met: bool | None  # None: reported, no target


@dataclass
class Figure:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)  # the server's RSS around each workload
    seconds: float = 0.0


def rps(s: Series) -> str:
    low, high = s.spread("rps")
    spread = f" ({low:,.0f}-{high:,.0f})" if len(s.runs) > 1 else ""
    return f"{s.median('rps'):,.0f} req/s{spread}"


def p99(s: Series) -> str:
    low, high = s.spread("p99_ms")
    spread = f" ({low:.2f}-{high:.2f})" if len(s.runs) > 1 else ""
    return f"p99 {s.median('p99_ms'):.2f} ms{spread}"


def latencies(s: Series) -> str:
    """The tail of one load: p50, p99, p99.9, and the longest stall (wrk's latency max)."""
    return (
        f"p50 {s.median('p50_ms'):.2f} ms, p99 {s.median('p99_ms'):.2f} ms,"
        f" p99.9 {s.median('p999_ms'):.2f} ms, max {s.median('max_ms'):,.0f} ms"
    )


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def record_path(store_id: str) -> str:
    return f"/v2/key-value-stores/{store_id}/records/"


def keys(n: int) -> list[str]:
    return [f"k{i:06d}" for i in range(n)]


def body_1k(_: int) -> bytes:
    return os.urandom(KIB)


def mixed_body(i: int) -> bytes:
    """The records of the mixed load (B6, and B9's): 1-100 KiB, spread evenly over the keys."""
    return os.urandom(KIB + (i * 7919) % (99 * KIB))


def mixed_load(url: str, store_id: str, n: int) -> Load:
    """B6's load: 90% GET and 10% PUT of 1-100 KiB by random key, 64 connections."""
    return Load(
        url,
        "mixed",
        record_path(store_id),
        keys=n,
        token=servers.TOKEN,
        min_size=KIB,
        max_size=100 * KIB,
        put_pct=10,
        connections=64,
    )


@contextlib.contextmanager
def _satchels(
    plan: Plan, data_dir: Path, env: dict[str, str] | None = None
) -> Iterator[dict[int, servers.Server]]:
    """One Satchel per worker count in the plan, all on the same data dir."""
    with contextlib.ExitStack() as stack:
        yield {
            w: stack.enter_context(
                servers.satchel(data_dir, workers=w, cpus=plan.server_cpus(w), logs=plan.logs, env=env)
            )
            for w in plan.workers
        }


@contextlib.contextmanager
def _ceilings(plan: Plan) -> Iterator[dict[int, servers.Server]]:
    with contextlib.ExitStack() as stack:
        yield {
            w: stack.enter_context(servers.ceiling(workers=w, cpus=plan.server_cpus(w), logs=plan.logs))
            for w in plan.workers
        }


def _best(series: dict[int, Series]) -> int:
    return max(series, key=lambda w: series[w].median("rps"))


# --- B1 and B2 share a seeded 100k-key store and a seeded SeaweedFS bucket.


@dataclass
class Shared:
    data_dir: Path
    store_id: str
    seed_seconds: float


def shared_store(plan: Plan) -> Shared:
    data_dir = plan.work / "b1-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    store_id, took = seed.satchel_store(data_dir, servers.TOKEN, "b1", keys(plan.keys), body_1k)
    return Shared(data_dir, store_id, took)


def run_loads(plan: Plan, loads: dict[str, Load], workers_of: dict[str, int]) -> dict[str, Series]:
    """Interleaved runs; each load's wrk is pinned as its server's worker count asks."""
    cpus = {plan.wrk_cpus(workers_of.get(name, 2)) for name in loads}
    if len(cpus) == 1:
        return interleaved(loads, seconds=plan.seconds, reps=plan.reps, warmup=plan.warmup, cpus=cpus.pop())
    return interleaved(loads, seconds=plan.seconds, reps=plan.reps, warmup=plan.warmup, cpus=None)


def b1_b2(plan: Plan, shared: Shared) -> list[Figure]:
    b1 = Figure("B1", "GET a 1 KiB record by random key in a 100k-key store, 32 connections")
    b2 = Figure("B2", "PUT a 1 KiB record by random key (acknowledged once committed), 32 connections")
    began = time.perf_counter()
    static = plan.work / "static"
    static.mkdir(parents=True, exist_ok=True)
    (static / servers.PAYLOAD_NAME).write_bytes(os.urandom(KIB))
    path = record_path(shared.store_id)
    with contextlib.ExitStack() as stack:
        satchels = stack.enter_context(_satchels(plan, shared.data_dir))
        ceilings = stack.enter_context(_ceilings(plan))
        nginx = None
        weed = None
        if plan.with_peers:
            w = max(plan.workers)
            nginx = stack.enter_context(
                servers.nginx(static, workers=w, cpus=plan.server_cpus(w), logs=plan.logs)
            )
            weed = stack.enter_context(servers.seaweedfs(plan.work / "seaweedfs", cpus=None, logs=plan.logs))
            weed_load = Load(weed.url, "put", f"/{servers.BUCKET}/", keys=plan.keys)
            took = seed.over_http(weed_load)
            b1.notes.append(
                f"SeaweedFS bucket seeded with {plan.keys:,} objects of 1 KiB over HTTP in {took:.0f} s."
            )
        b1.notes.append(
            f"Satchel store seeded with {plan.keys:,} records of 1 KiB in {shared.seed_seconds:.0f} s"
            " (in-process, through the service layer)."
        )

        def loads(mode: str) -> tuple[dict[str, Load], dict[str, int]]:
            found: dict[str, Load] = {}
            workers_of: dict[str, int] = {}
            for w, server in satchels.items():
                found[f"satchel w{w}"] = Load(server.url, mode, path, keys=plan.keys, token=servers.TOKEN)
                found[f"ceiling w{w}"] = Load(ceilings[w].url, mode, "/records/", keys=plan.keys)
                workers_of[f"satchel w{w}"] = workers_of[f"ceiling w{w}"] = w
            if weed is not None:
                found["seaweedfs"] = Load(weed.url, mode, f"/{servers.BUCKET}/", keys=plan.keys)
            if nginx is not None and mode == "get":
                found[f"nginx w{max(plan.workers)}"] = Load(nginx.url, "get", "/", fmt=servers.PAYLOAD_NAME)
                workers_of[f"nginx w{max(plan.workers)}"] = max(plan.workers)
            return found, workers_of

        with contextlib.ExitStack() as watching:
            for w, server in satchels.items():
                watching.enter_context(watched(server.proc, f"GET 1 KiB, {w} worker(s)", b1.memory))
            gets = run_loads(plan, *loads("get"))
        b1.series = list(gets.values())
        with contextlib.ExitStack() as watching:
            for w, server in satchels.items():
                what = f"PUT 1 KiB, {w} worker(s) (before: after B1's runs)"
                watching.enter_context(watched(server.proc, what, b2.memory))
            puts = run_loads(plan, *loads("put"))
        b2.series = list(puts.values())
        if plan.profile_seconds:
            w = min(plan.workers)
            for fig, mode in ((b1, "get"), (b2, "put")):
                found = profile.record(
                    satchels[w].proc.pid, loads(mode)[0][f"satchel w{w}"], plan.profile_seconds
                )
                fig.notes += profile.lines(
                    found, f"Satchel ({w} worker) under this load, taken after the runs"
                )
    _b1_rows(plan, b1, gets)
    _b2_rows(plan, b2, puts)
    b1.seconds = b2.seconds = (time.perf_counter() - began) / 2
    return [b1, b2]


def _b1_rows(plan: Plan, fig: Figure, runs: dict[str, Series]) -> None:
    w = _best({w: runs[f"satchel w{w}"] for w in plan.workers})
    sat, ceil = runs[f"satchel w{w}"], runs[f"ceiling w{w}"]
    r = ratio(sat.median("rps"), ceil.median("rps"))
    fig.rows.append(
        Row(
            "B1",
            f"throughput, {w} worker(s) (best)",
            rps(sat),
            "bare Starlette on granian: " + rps(ceil),
            f"{r:.2f}x",
            ">= 0.8x",
            r >= 0.8,
        )
    )
    r99 = ratio(sat.median("p99_ms"), ceil.median("p99_ms"))
    fig.rows.append(Row("B1", "p99 latency", p99(sat), p99(ceil), f"{r99:.2f}x", "<= 2x", r99 <= 2))
    _other_worker_rows("B1", plan, fig, runs, best=w)
    nginx = runs.get(f"nginx w{max(plan.workers)}")
    if nginx is not None:
        n = ratio(sat.median("rps"), nginx.median("rps"))
        fig.rows.append(
            Row("B1", "vs nginx static 1 KiB", rps(sat), rps(nginx), f"{n:.2f}x", "(reported)", None)
        )
    weed = runs.get("seaweedfs")
    if weed is not None:
        p = ratio(sat.median("rps"), weed.median("rps"))
        fig.rows.append(
            Row("B1", "vs SeaweedFS S3 GET (peer)", rps(sat), rps(weed), f"{p:.2f}x", "> 1x (lead)", p > 1)
        )


def _other_worker_rows(name: str, plan: Plan, fig: Figure, runs: dict[str, Series], *, best: int) -> None:
    """Satchel against the bare handler at the worker counts that were not the best one."""
    for other in plan.workers:
        if other != best:
            s, c = runs[f"satchel w{other}"], runs[f"ceiling w{other}"]
            o = ratio(s.median("rps"), c.median("rps"))
            row = Row(
                name,
                f"throughput, {other} worker(s)",
                rps(s),
                "bare Starlette: " + rps(c),
                f"{o:.2f}x",
                "(other worker count)",
                None,
            )
            fig.rows.append(row)


def _b2_rows(plan: Plan, fig: Figure, runs: dict[str, Series]) -> None:
    w = _best({w: runs[f"satchel w{w}"] for w in plan.workers})
    sat, ceil = runs[f"satchel w{w}"], runs[f"ceiling w{w}"]
    r = ratio(sat.median("rps"), ceil.median("rps"))
    fig.rows.append(
        Row(
            "B2",
            f"throughput, {w} worker(s) (best)",
            rps(sat),
            "bare Starlette receiving 1 KiB: " + rps(ceil),
            f"{r:.2f}x",
            ">= 0.6x",
            r >= 0.6,
        )
    )
    fig.rows.append(Row("B2", "p99 latency", p99(sat), p99(ceil), "", "(reported)", None))
    _other_worker_rows("B2", plan, fig, runs, best=w)
    weed = runs.get("seaweedfs")
    if weed is not None:
        p = ratio(sat.median("rps"), weed.median("rps"))
        fig.rows.append(
            Row("B2", "vs SeaweedFS S3 PUT (peer)", rps(sat), rps(weed), f"{p:.2f}x", "> 1x (ahead)", p > 1)
        )
    fig.notes.append(
        "Satchel runs with its default durability (`process`: WAL, synchronous=NORMAL; a write is"
        " acknowledged once committed, and survives a crash of the server process). SeaweedFS runs with"
        " its defaults."
    )


# --- B3: listing at 1k and at 1M keys


def b6(plan: Plan) -> Figure:
    fig = Figure("B6", "mixed load: 90% GET, 10% PUT, bodies of 1-100 KiB, 64 connections")
    began = time.perf_counter()
    data_dir = plan.work / "b6-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    store_id, took = seed.satchel_store(data_dir, servers.TOKEN, "mixed", keys(plan.mixed_keys), mixed_body)
    fig.notes.append(f"Store seeded with {plan.mixed_keys:,} records of 1-100 KiB in {took:.0f} s.")
    fig.notes.append(
        "One run per worker count after a warm-up. Max is the longest single request wrk saw (the longest"
        " stall a client met); WAL after is the size of `satchel.db-wal` just before the server stops."
    )
    for w in plan.workers:
        with (
            servers.satchel(data_dir, workers=w, cpus=plan.server_cpus(w), logs=plan.logs) as server,
            watched(server.proc, f"mixed 90/10, {w} worker(s)", fig.memory),
        ):
            runs = interleaved(
                {f"satchel w{w}": mixed_load(server.url, store_id, plan.mixed_keys)},
                seconds=plan.mixed_seconds,
                reps=1,
                warmup=plan.warmup,
                cpus=plan.wrk_cpus(w),
            )
            # Before the server stops: a clean shutdown checkpoints the WAL away.
            wal = data_dir / "satchel.db-wal"
            wal_mib = wal.stat().st_size / MIB if wal.exists() else 0.0
        s = runs[f"satchel w{w}"]
        fig.series.append(s)
        fig.rows.append(
            Row(
                "B6",
                f"{plan.mixed_seconds:.0f} s, {w} worker(s)",
                f"{rps(s)}, {latencies(s)}",
                f"errors: {s.errors}; WAL after: {wal_mib:.0f} MiB",
                "",
                f"p99 <= {MIXED_P99_MS:.0f} ms, no errors",
                s.errors == 0 and s.median("p99_ms") <= MIXED_P99_MS,
            )
        )
    fig.seconds = time.perf_counter() - began
    return fig


def environment() -> dict[str, str]:
    """What the report says about the machine and the tools."""

    def version(cmd: list[str]) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
            text = (done.stdout or done.stderr).strip().splitlines()
            return text[0] if text else "?"
        return "missing"

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    weed = which("weed")
    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "load": load_average(),
        "wrk": version(["wrk", "-v"]),
        "nginx": version(["nginx", "-v"]),
        "seaweedfs": version([weed, "version"]) if weed else "missing",
    }
