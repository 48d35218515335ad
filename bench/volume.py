"""Figures of volume: a key page in a 1M-key store (B3), one 1 GiB record (B4), 100k keys iterated (B5)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from apify_client import ApifyClient

from bench import seed, servers
from bench.figures import (
    CACHE_VERSION,
    KIB,
    MIB,
    Figure,
    Plan,
    Row,
    Shared,
    body_1k,
    keys,
    ratio,
    record_path,
    run_loads,
)
from bench.harness import Load


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
        runs = run_loads(plan, loads, {name: 1 for name in loads})
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
    store_id, _ = seed.satchel_store(data_dir, servers.TOKEN, "huge", [], body_1k)
    auth = ["-H", f"Authorization: Bearer {servers.TOKEN}"]
    reps = max(1, plan.reps)
    with contextlib.ExitStack() as stack:
        satchel = stack.enter_context(servers.satchel(data_dir, workers=1, cpus=None, logs=plan.logs))
        nginx = None
        if plan.with_peers:
            nginx = stack.enter_context(servers.nginx(files, workers=1, cpus=None, logs=plan.logs))
        url = satchel.url + record_path(store_id) + "huge"
        rss_before = satchel.proc.memory("VmRSS")
        satchel.proc.reset_peak()
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
        for key in keys(plan.keys)[1:]:
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
