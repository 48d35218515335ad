"""The figures of issue 4 (B1-B6): each starts its servers, measures Satchel beside its references in one
run, and returns rows for the report."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from apify_client import ApifyClient

from bench import profile, seed, servers
from bench.harness import Load, Series, interleaved, load_average, which

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
CACHE_VERSION = "1"  # bump when a cached store's shape changes


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
    mixed_seconds: float = 60.0
    mixed_keys: int = 5000
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
            mixed_seconds=1,
            mixed_keys=200,
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
    seconds: float = 0.0


def rps(s: Series) -> str:
    low, high = s.spread("rps")
    return f"{s.median('rps'):,.0f} req/s ({low:,.0f}-{high:,.0f})"


def p99(s: Series) -> str:
    low, high = s.spread("p99_ms")
    return f"p99 {s.median('p99_ms'):.2f} ms ({low:.2f}-{high:.2f})"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _record_path(store_id: str) -> str:
    return f"/v2/key-value-stores/{store_id}/records/"


def _keys(n: int) -> list[str]:
    return [f"k{i:06d}" for i in range(n)]


def _body_1k(_: int) -> bytes:
    return os.urandom(KIB)


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
    store_id, took = seed.satchel_store(data_dir, servers.TOKEN, "b1", _keys(plan.keys), _body_1k)
    return Shared(data_dir, store_id, took)


def _run(plan: Plan, loads: dict[str, Load], workers_of: dict[str, int]) -> dict[str, Series]:
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
    record_path = _record_path(shared.store_id)
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
                found[f"satchel w{w}"] = Load(
                    server.url, mode, record_path, keys=plan.keys, token=servers.TOKEN
                )
                found[f"ceiling w{w}"] = Load(ceilings[w].url, mode, "/records/", keys=plan.keys)
                workers_of[f"satchel w{w}"] = workers_of[f"ceiling w{w}"] = w
            if weed is not None:
                found["seaweedfs"] = Load(weed.url, mode, f"/{servers.BUCKET}/", keys=plan.keys)
            if nginx is not None and mode == "get":
                found[f"nginx w{max(plan.workers)}"] = Load(nginx.url, "get", "/", fmt=servers.PAYLOAD_NAME)
                workers_of[f"nginx w{max(plan.workers)}"] = max(plan.workers)
            return found, workers_of

        gets = _run(plan, *loads("get"))
        b1.series = list(gets.values())
        puts = _run(plan, *loads("put"))
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


def _list_store(plan: Plan) -> tuple[Path, str, str, float]:
    """A data dir with a 1000-key store and a (list_groups x 1000)-key store; cached between runs."""
    data_dir = plan.cache / f"b3-{plan.list_groups}-v{CACHE_VERSION}"
    marker = data_dir / "bench-stores.json"
    if marker.exists():
        ids = json.loads(marker.read_text())
        return data_dir, ids["small"], ids["big"], 0.0
    shutil.rmtree(data_dir, ignore_errors=True)
    small_keys = [f"g000-{i:04d}" for i in range(1000)]
    big_keys = [f"g{g:03d}-{i:04d}" for g in range(plan.list_groups) for i in range(1000)]
    small, took_small = seed.satchel_store(
        data_dir, servers.TOKEN, "keys-1k", small_keys, lambda _: b"v" * 16
    )
    big, took_big = seed.satchel_store(data_dir, servers.TOKEN, "keys-big", big_keys, lambda _: b"v" * 16)
    marker.write_text(json.dumps({"small": small, "big": big}))
    return data_dir, small, big, took_small + took_big


def b3(plan: Plan) -> Figure:
    big_n = plan.list_groups * 1000
    fig = Figure(
        "B3", f"list a page of 1000 keys: a 1k-key store against a {big_n:,}-key store, 1 connection"
    )
    began = time.perf_counter()
    data_dir, small, big, took = _list_store(plan)
    fig.notes.append(
        f"Stores seeded in {took:.0f} s (0 s: reused from the cache in the work dir). Keys are gNNN-NNNN; the"
        " large store's pages start after a random key (exclusiveStartKey) or take a random gNNN- prefix, so"
        " every page holds 1000 keys in both stores."
    )
    with servers.satchel(data_dir, workers=1, cpus=plan.server_cpus(1), logs=plan.logs) as server:

        def keys(store: str, query: str, fmt: str, n: int) -> Load:
            return Load(
                server.url,
                "list",
                f"/v2/key-value-stores/{store}/keys",
                fmt=fmt,
                keys=n,
                query=query,
                token=servers.TOKEN,
                connections=1,
            )

        groups = max(1, plan.list_groups - 1)
        loads = {
            "1k keys": keys(small, "?limit=1000", "", 1),
            f"{big_n:,} keys": keys(big, "?limit=1000&exclusiveStartKey=", "g%03d-0000", groups),
            "1k keys, prefix": keys(small, "?limit=1000&prefix=", "g000-", 1),
            f"{big_n:,} keys, prefix": keys(big, "?limit=1000&prefix=", "g%03d-", plan.list_groups),
        }
        runs = _run(plan, loads, {name: 1 for name in loads})
    fig.series = list(runs.values())
    for kind, suffix in (("page", ""), ("prefix page", ", prefix")):
        s, b = runs[f"1k keys{suffix}"], runs[f"{big_n:,} keys{suffix}"]
        r50 = ratio(b.median("p50_ms"), s.median("p50_ms"))
        r99 = ratio(b.median("p99_ms"), s.median("p99_ms"))
        fig.rows.append(
            Row(
                "B3",
                f"{kind} latency p50 (p99)",
                f"{big_n:,} keys: {b.median('p50_ms'):.2f} ms ({b.median('p99_ms'):.2f})",
                f"1k keys: {s.median('p50_ms'):.2f} ms ({s.median('p99_ms'):.2f})",
                f"{r50:.2f}x ({r99:.2f}x)",
                "<= 1.3x",
                r50 <= 1.3,
            )
        )
    fig.seconds = time.perf_counter() - began
    return fig


# --- B4: one 1 GiB record


def _curl(args: list[str]) -> tuple[float, int, int]:
    """Seconds, bytes moved and status of one curl transfer."""
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{time_total} %{size_download} %{size_upload} %{http_code}",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    ).stdout.split()
    return float(out[0]), max(int(out[1]), int(out[2])), int(out[3])


def _reset_peak(pids: list[int]) -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) of these processes, so it measures from now."""
    for pid in pids:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def b4(plan: Plan) -> Figure:
    size = plan.huge_bytes
    fig = Figure("B4", f"PUT then GET one record of {size / MIB:,.0f} MiB")
    began = time.perf_counter()
    files = plan.work / "huge"
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    source = files / "huge.bin"
    block = os.urandom(MIB)
    with open(source, "wb") as f:
        for _ in range(size // MIB):
            f.write(block)
    data_dir = plan.work / "b4-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    store_id, _ = seed.satchel_store(data_dir, servers.TOKEN, "huge", [], _body_1k)
    auth = ["-H", f"Authorization: Bearer {servers.TOKEN}"]
    reps = max(1, plan.reps)
    with contextlib.ExitStack() as stack:
        satchel = stack.enter_context(servers.satchel(data_dir, workers=1, cpus=None, logs=plan.logs))
        nginx = None
        if plan.with_peers:
            nginx = stack.enter_context(servers.nginx(files, workers=1, cpus=None, logs=plan.logs))
        url = satchel.url + _record_path(store_id) + "huge"
        pids = satchel.proc.tree()
        rss_before = satchel.proc.memory("VmRSS")
        _reset_peak(pids)
        put_s, put_bytes, put_status = _curl(
            ["-T", str(source), "-H", "Content-Type: application/octet-stream", *auth, url]
        )
        gets, nginx_gets = [], []
        for _ in range(reps):
            gets.append(_curl([*auth, url]))
            if nginx is not None:
                nginx_gets.append(_curl([nginx.url + "/huge.bin"]))
        peak = satchel.proc.memory("VmHWM")
    shutil.rmtree(files, ignore_errors=True)
    growth = peak - rss_before
    fig.rows.append(
        Row(
            "B4",
            "server peak RSS growth over PUT + GETs",
            f"{growth / MIB:.1f} MiB",
            f"RSS before: {rss_before / MIB:.0f} MiB",
            "",
            "<= 64 MiB",
            growth <= 64 * MIB,
        )
    )
    ok = put_status == 201 and put_bytes == size and all(g[2] == 200 and g[1] == size for g in gets)
    get_mbs = sorted(size / g[0] / MIB for g in gets)
    med = get_mbs[len(get_mbs) // 2]
    fig.rows.append(
        Row("B4", "PUT throughput", f"{size / put_s / MIB:,.0f} MiB/s", "", "", "(reported)", None)
    )
    sat_get = f"{med:,.0f} MiB/s ({get_mbs[0]:,.0f}-{get_mbs[-1]:,.0f})"
    if nginx_gets:
        ng = sorted(size / g[0] / MIB for g in nginx_gets)
        nmed = ng[len(ng) // 2]
        r = ratio(med, nmed)
        fig.rows.append(
            Row(
                "B4",
                "GET throughput",
                sat_get,
                f"nginx from disk: {nmed:,.0f} MiB/s ({ng[0]:,.0f}-{ng[-1]:,.0f})",
                f"{r:.2f}x",
                ">= 0.5x",
                r >= 0.5 and ok,
            )
        )
    else:
        fig.rows.append(Row("B4", "GET throughput", sat_get, "(nginx skipped)", "", ">= 0.5x", None))
    fig.notes.append(
        f"curl on loopback; PUT once ({put_s:.1f} s, status {put_status}), then {reps} GETs of each server"
        " in turns. Peak RSS is the kernel's VmHWM summed over the server's processes, reset just before the"
        " PUT. Commands: `curl -T huge.bin -H 'Content-Type: application/octet-stream' URL` and"
        " `curl -o /dev/null URL`."
    )
    if not ok:
        fig.notes.append(f"Transfer check failed: PUT {put_status} {put_bytes} bytes, GETs {gets}.")
    fig.seconds = time.perf_counter() - began
    return fig


# --- B5: iterate 100k keys with apify-client, against Crawlee's file-system storage


def _crawlee_store(plan: Plan) -> tuple[Path | None, str]:
    """Crawlee's file-system storage holding plan.keys records of 1 KiB; cached between runs.

    Crawlee writes the first record itself; the rest are written in exactly its layout (a value file and a
    metadata file per key), which takes seconds where 100k set_value calls take minutes.
    """
    try:
        from crawlee.configuration import Configuration
        from crawlee.storage_clients import FileSystemStorageClient
        from crawlee.storages import KeyValueStore
    except ImportError:
        return None, "crawlee is not installed (the `bench` extra); the Crawlee side was skipped."
    root = plan.cache / f"crawlee-{plan.keys}-v{CACHE_VERSION}"
    folder = root / "key_value_stores" / "bench"
    marker = root / "complete"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)

        async def first() -> None:
            config = Configuration(storage_dir=str(root), purge_on_start=False)
            kvs = await KeyValueStore.open(
                name="bench", storage_client=FileSystemStorageClient(), configuration=config
            )
            await kvs.set_value("k000000", os.urandom(KIB), "application/octet-stream")

        asyncio.run(first())
        template = (folder / "k000000.__metadata__.json").read_text()
        for key in _keys(plan.keys)[1:]:
            (folder / key).write_bytes(os.urandom(KIB))
            (folder / f"{key}.__metadata__.json").write_text(template.replace("k000000", key))
        marker.write_text("ok")
    return root, ""


def _iterate_crawlee(root: Path) -> int:
    from crawlee.configuration import Configuration
    from crawlee.storage_clients import FileSystemStorageClient
    from crawlee.storages import KeyValueStore

    async def run() -> int:
        config = Configuration(storage_dir=str(root), purge_on_start=False)
        kvs = await KeyValueStore.open(
            name="bench", storage_client=FileSystemStorageClient(), configuration=config
        )
        count = 0
        async for _ in kvs.iterate_keys():
            count += 1
        return count

    return asyncio.run(run())


def _iterate_satchel(url: str, store_id: str) -> int:
    client = ApifyClient(token=servers.TOKEN, api_url=url, api_public_url=url)
    return sum(1 for _ in client.key_value_store(store_id).iterate_keys())


def _timed(job: Callable[[], int]) -> tuple[float, int]:
    began = time.perf_counter()
    count = job()
    return time.perf_counter() - began, count


def b5(plan: Plan, shared: Shared) -> Figure:
    fig = Figure("B5", f"iterate every key of a {plan.keys:,}-record store")
    began = time.perf_counter()
    root, skipped = _crawlee_store(plan)
    if skipped:
        fig.notes.append(skipped)
    reps = max(1, min(plan.reps, 3))
    sat_runs: list[tuple[float, int]] = []
    crawlee_runs: list[tuple[float, int]] = []
    with servers.satchel(shared.data_dir, workers=1, cpus=None, logs=plan.logs) as server:
        for _ in range(reps):
            sat_runs.append(_timed(lambda: _iterate_satchel(server.url, shared.store_id)))
            if root is not None:
                crawlee_runs.append(_timed(lambda: _iterate_crawlee(root)))
    sat = sorted(t for t, _ in sat_runs)
    counts_ok = all(c == plan.keys for _, c in sat_runs + crawlee_runs)
    sat_text = f"{sat[len(sat) // 2]:.2f} s ({sat[0]:.2f}-{sat[-1]:.2f})"
    if crawlee_runs:
        cr = sorted(t for t, _ in crawlee_runs)
        r = ratio(cr[len(cr) // 2], sat[len(sat) // 2])
        fig.rows.append(
            Row(
                "B5",
                "time to iterate all keys",
                "apify-client `iterate_keys()`: " + sat_text,
                "Crawlee FileSystemStorageClient `iterate_keys()`: "
                f"{cr[len(cr) // 2]:.2f} s ({cr[0]:.2f}-{cr[-1]:.2f})",
                f"{r:.1f}x faster",
                "Satchel faster",
                r > 1 and counts_ok,
            )
        )
    else:
        fig.rows.append(
            Row("B5", "time to iterate all keys", sat_text, "(skipped)", "", "Satchel faster", None)
        )
    fig.notes.append(
        f"{reps} runs each, in turns; every run counted {plan.keys:,} keys: {counts_ok}. Satchel over"
        " loopback HTTP (pages of 1000 keys), Crawlee on the local disk with a warm page cache."
    )
    fig.seconds = time.perf_counter() - began
    return fig


# --- B6: mixed load


def b6(plan: Plan) -> Figure:
    fig = Figure("B6", "mixed load: 90% GET, 10% PUT, bodies of 1-100 KiB, 64 connections")
    began = time.perf_counter()
    data_dir = plan.work / "b6-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    sizes = [KIB + (i * 7919) % (99 * KIB) for i in range(plan.mixed_keys)]
    store_id, took = seed.satchel_store(
        data_dir, servers.TOKEN, "mixed", _keys(plan.mixed_keys), lambda i: os.urandom(sizes[i])
    )
    fig.notes.append(f"Store seeded with {plan.mixed_keys:,} records of 1-100 KiB in {took:.0f} s.")
    for w in plan.workers:
        with servers.satchel(data_dir, workers=w, cpus=plan.server_cpus(w), logs=plan.logs) as server:
            load = Load(
                server.url,
                "mixed",
                _record_path(store_id),
                keys=plan.mixed_keys,
                token=servers.TOKEN,
                min_size=KIB,
                max_size=100 * KIB,
                put_pct=10,
                connections=64,
            )
            runs = interleaved(
                {f"satchel w{w}": load},
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
                f"{rps(s)}, p50 {s.median('p50_ms'):.2f} ms, {p99(s)}",
                f"errors: {s.errors}; WAL after: {wal_mib:.0f} MiB",
                "",
                "no errors",
                s.errors == 0,
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
