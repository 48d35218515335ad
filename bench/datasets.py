"""B7, datasets: push 1 KiB items in batches of 1,000 (items/s), then read a page of 1,000 items at offset 0
and at offset 1,000,000 (ms per page), through apify-client against Satchel beside Crawlee's
FileSystemStorageClient doing the same work on the local disk.

    python -m bench.run --only B7            # this figure alone
    python -m bench.run --only B7 --smoke --out /tmp/b.md

Satchel's large dataset starts with the measured apify-client pushes and is filled up by plain HTTP pushes of
8,000 items to the same endpoint (the client's own serialisation and gzip would take minutes of CPU here).
Crawlee, which keeps one file per item, gets the measured pushes into a fresh dataset and its large dataset
written in its own layout (cached in the work dir), as a million push_data items would take a quarter of an
hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from apify_client import ApifyClient

from bench import servers
from bench.figures import CACHE_VERSION, Figure, Plan, Row, ratio
from bench.harness import watched

BATCH = 1000  # items per push, as the figure asks
ITEM_SHAPE = "1"  # bump when item() changes: Crawlee's cached large dataset is made of them
FILL_BATCH = 8000  # items per plain POST filling the large dataset (a push may be up to 10 MiB decoded)
PAGE = 1000  # items per page read
# The words of a crawl result's text: items compress like real ones, not like zeros or noise.
VOCABULARY = (
    "price stock shipping review rating colour size brand model warranty delivery return cart offer discount"
    " vintage cotton leather steel wooden handmade organic premium classic modern"
)
WORDS = VOCABULARY.split()


@dataclass
class Sizes:
    pushed: int  # items pushed with apify-client in batches of BATCH, timed: the first of the large dataset
    crawlee_pushed: int  # the same for Crawlee, into a fresh dataset (one file per item is slow)
    big: int  # items in the dataset the pages are read from (Satchel: the rest posted in FILL_BATCHes)
    far: int  # offset of the far page
    reps: int  # Satchel's page reads per offset
    crawlee_reps: int  # Crawlee's (each lists the whole folder: seconds at a million items)


def sizes(plan: Plan) -> Sizes:
    if plan.smoke:
        return Sizes(pushed=1000, crawlee_pushed=1000, big=2000, far=1000, reps=2, crawlee_reps=1)
    return Sizes(pushed=100_000, crawlee_pushed=10_000, big=1_001_000, far=1_000_000, reps=5, crawlee_reps=1)


def _text(i: int, length: int) -> str:
    words: list[str] = []
    n = i
    while sum(len(w) + 1 for w in words) < length:
        n = (n * 1103515245 + 12345) & 0x7FFFFFFF
        words.append(WORDS[n % len(WORDS)])
    return " ".join(words)[:length]


TEXTS = [_text(i, 880) for i in range(256)]


def item(i: int) -> dict[str, Any]:
    """About 1 KiB of JSON (as apify-client serialises it): a scraped product."""
    return {
        "url": f"https://shop.example/products/{i:09d}",
        "title": f"Product {i}",
        "price": round(5 + (i % 9973) / 100, 2),
        "inStock": i % 3 != 0,
        "description": TEXTS[i % len(TEXTS)],
    }


def items(start: int, count: int) -> list[dict[str, Any]]:
    return [item(i) for i in range(start, start + count)]


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes (all their threads) so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _ms(values: list[float]) -> str:
    """The median, and the spread when there was more than one run."""
    median = f"{statistics.median(values):,.1f} ms"
    return median if len(values) == 1 else f"{median} ({min(values):,.1f}-{max(values):,.1f})"


@dataclass
class Pushed:
    """Seconds spent in the pushes alone (making the items is not timed), and the CPU they took."""

    items: int
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else float("nan")

    def cpu(self) -> str:
        server = f"server {self.server_cpu:.1f} s, " if self.server_cpu else ""
        return f"CPU: {server}client {self.client_cpu:.1f} s"


def _timed_pushes(push: Callable[[list[dict[str, Any]]], object], total: int, pids: list[int]) -> Pushed:
    """Push items 0..total-1 in batches of BATCH."""
    done = Pushed(total)
    server_before = cpu_seconds(pids)
    for start in range(0, total, BATCH):
        batch = items(start, min(BATCH, total - start))
        began, cpu = time.perf_counter(), time.process_time()
        push(batch)
        done.seconds += time.perf_counter() - began
        done.client_cpu += time.process_time() - cpu
    done.server_cpu = cpu_seconds(pids) - server_before
    return done


# --- Satchel, through the official Python client


def _fill(server: servers.Server, dataset_id: str, start: int, stop: int) -> Pushed:
    """Items start..stop-1 through the API with a plain HTTP client, in order: bodies of FILL_BATCH items made
    by orjson and sent uncompressed, so the fill costs mostly the server's work."""
    done = Pushed(stop - start)
    endpoint = f"{server.url}/v2/datasets/{dataset_id}/items"
    headers = {"authorization": f"Bearer {servers.TOKEN}", "content-type": "application/json"}
    pids = server.proc.tree()
    server_before = cpu_seconds(pids)
    with httpx.Client(timeout=300) as http:
        for first in range(start, stop, FILL_BATCH):
            began, cpu = time.perf_counter(), time.process_time()
            body = orjson.dumps(items(first, min(FILL_BATCH, stop - first)))
            http.post(endpoint, content=body, headers=headers).raise_for_status()
            done.seconds += time.perf_counter() - began
            done.client_cpu += time.process_time() - cpu
    done.server_cpu = cpu_seconds(pids) - server_before
    return done


def _satchel(
    server: servers.Server, size: Sizes, offsets: tuple[int, int]
) -> tuple[Pushed, Pushed, dict[int, list[float]], int]:
    """Push, fill, then read the pages in turns; returns the pushes, the fill, ms per read by offset, and the
    item count."""
    client = ApifyClient(token=servers.TOKEN, api_url=server.url, api_public_url=server.url)
    dataset = client.datasets().get_or_create(name="b7")
    dc = client.dataset(dataset.id)
    pushed = _timed_pushes(dc.push_items, size.pushed, server.proc.tree())
    filled = _fill(server, dataset.id, size.pushed, size.big)
    reads: dict[int, list[float]] = {o: [] for o in offsets}
    for _ in range(size.reps):
        for offset in offsets:
            began = time.perf_counter()
            page = dc.list_items(offset=offset, limit=PAGE)
            reads[offset].append((time.perf_counter() - began) * 1000)
            assert len(page.items) == PAGE, page.count
            assert page.items[0]["url"] == item(offset)["url"], page.items[0]
    got = dc.get()
    return pushed, filled, reads, got.item_count if got else 0


# --- Crawlee's file-system storage client


async def _open(root: Path, name: str) -> Any:
    """Crawlee's Dataset of this name, on its file-system storage client under root."""
    from crawlee.configuration import Configuration
    from crawlee.storage_clients import FileSystemStorageClient
    from crawlee.storages import Dataset

    config = Configuration(storage_dir=str(root), purge_on_start=False)
    return await Dataset.open(name=name, storage_client=FileSystemStorageClient(), configuration=config)


def _write_items(folder: Path, start: int, stop: int) -> None:
    """Items start..stop-1 as Crawlee writes them: a file `{number:09d}.json` each, numbered from 1, of JSON
    indented by 2 (orjson's indented output is byte for byte Crawlee's `json.dumps(indent=2)` of these)."""
    for i in range(start, stop):
        (folder / f"{i + 1:09d}.json").write_bytes(orjson.dumps(item(i), option=orjson.OPT_INDENT_2))


def _crawlee_big(plan: Plan, n: int) -> tuple[Path, float]:
    """A Crawlee dataset of n items: the first pushed by Crawlee, the rest written in its layout by a process
    per core, its metadata counting them all; cached in the work dir. Returns its root and the seconds taken
    (0: from the cache)."""
    root = plan.cache / f"crawlee-dataset-{n}-v{CACHE_VERSION}.{ITEM_SHAPE}"
    marker = root / "complete"
    if marker.exists():
        return root, 0.0
    shutil.rmtree(root, ignore_errors=True)
    began = time.perf_counter()

    async def first() -> None:
        dataset = await _open(root, "big")
        await dataset.push_data(item(0))

    asyncio.run(first())
    folder = root / "datasets" / "big"
    step = 50_000
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        jobs = [pool.submit(_write_items, folder, s, min(n, s + step)) for s in range(1, n, step)]
        for job in jobs:
            job.result()
    meta_path = folder / "__metadata__.json"
    meta = json.loads(meta_path.read_text())
    meta["item_count"] = n
    meta_path.write_text(json.dumps(meta, indent=2))
    marker.write_text("ok")
    return root, time.perf_counter() - began


def _crawlee(
    plan: Plan, work: Path, size: Sizes, offsets: tuple[int, int]
) -> tuple[Pushed, dict[int, list[float]], float]:
    """Push into a fresh dataset, then read the pages of the large one; returns the pushes, ms per read by
    offset, and the seconds the large dataset took to make."""
    shutil.rmtree(work, ignore_errors=True)
    big, made = _crawlee_big(plan, size.big)
    reads: dict[int, list[float]] = {o: [] for o in offsets}
    with asyncio.Runner() as runner:
        fresh = runner.run(_open(work, "push"))
        pushed = _timed_pushes(lambda batch: runner.run(fresh.push_data(batch)), size.crawlee_pushed, [])
        dataset = runner.run(_open(big, "big"))
        for _ in range(size.crawlee_reps):
            for offset in offsets:
                began = time.perf_counter()
                page = runner.run(dataset.get_data(offset=offset, limit=PAGE))
                reads[offset].append((time.perf_counter() - began) * 1000)
                assert len(page.items) == PAGE, page.count
                assert page.items[0]["url"] == item(offset)["url"], page.items[0]
    shutil.rmtree(work, ignore_errors=True)
    return pushed, reads, made


def crawlee_missing() -> str:
    try:
        import crawlee.storage_clients  # noqa: F401
    except ImportError:
        return "crawlee is not installed (the `bench` extra)"
    return ""


# --- the figure


def b7(plan: Plan) -> Figure:
    size = sizes(plan)
    offsets = (0, size.far)
    fig = Figure(
        "B7",
        f"dataset: push 1 KiB items in batches of {BATCH:,}, then read a page of {PAGE:,} at offset 0 and at"
        f" offset {size.far:,} of {size.big:,} items",
    )
    began = time.perf_counter()
    data_dir = plan.work / "b7-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    with (
        servers.satchel(data_dir, workers=1, cpus=None, logs=plan.logs) as server,
        watched(server.proc, "push, fill, then page reads", fig.memory),
    ):
        sat, fill, sat_reads, count = _satchel(server, size, offsets)
    shutil.rmtree(data_dir, ignore_errors=True)
    why = crawlee_missing()
    cr, cr_reads, made = (
        (Pushed(0), {}, 0.0) if why else _crawlee(plan, plan.work / "b7-crawlee", size, offsets)
    )

    sat_cell = (
        f"apify-client `push_items`: {sat.rate:,.0f} items/s ({sat.items:,} in {sat.seconds:.1f} s;"
        f" {sat.cpu()})"
    )
    if why:
        fig.rows.append(Row("B7", f"push, batches of {BATCH:,}", sat_cell, f"(skipped: {why})", "", "", None))
    else:
        fig.rows.append(
            Row(
                "B7",
                f"push, batches of {BATCH:,}",
                sat_cell,
                f"Crawlee FileSystemStorageClient `push_data`: {cr.rate:,.0f} items/s"
                f" ({cr.items:,} in {cr.seconds:.1f} s; {cr.cpu()})",
                f"{ratio(sat.rate, cr.rate):.1f}x",
                "(reported)",
                None,
            )
        )
    fig.rows.append(
        Row(
            "B7",
            f"push, plain HTTP, batches of {FILL_BATCH:,} (the fill)",
            f"{fill.rate:,.0f} items/s ({fill.items:,} in {fill.seconds:.1f} s; {fill.cpu()})",
            "",
            "",
            "(reported)",
            None,
        )
    )
    for offset in offsets:
        sat_ms = statistics.median(sat_reads[offset])
        cell = f"`list_items(offset={offset:,}, limit={PAGE:,})`: {_ms(sat_reads[offset])}"
        if why:
            fig.rows.append(Row("B7", f"page at offset {offset:,}", cell, "(skipped)", "", "", None))
            continue
        cr_ms = statistics.median(cr_reads[offset])
        fig.rows.append(
            Row(
                "B7",
                f"page at offset {offset:,}",
                cell,
                f"Crawlee `get_data(offset={offset:,}, limit={PAGE:,})`: {_ms(cr_reads[offset])}",
                f"{ratio(cr_ms, sat_ms):.1f}x faster",
                "(reported)",
                None,
            )
        )
    far, near = statistics.median(sat_reads[size.far]), statistics.median(sat_reads[0])
    r = ratio(far, near)
    fig.rows.append(
        Row(
            "B7",
            f"page at offset {size.far:,} against offset 0",
            f"offset {size.far:,}: {far:,.1f} ms",
            f"offset 0: {near:,.1f} ms",
            f"{r:.2f}x",
            "<= 1.3x",
            r <= 1.3 and count == size.big,
        )
    )
    fig.notes += _notes(size, count, why, made)
    fig.seconds = time.perf_counter() - began
    return fig


def _notes(size: Sizes, count: int, why: str, made: float) -> list[str]:
    example = json.dumps(item(1))
    notes = [
        f"Command: `python -m bench.run --only B7`. Items are scraped-product objects of {len(example):,}"
        f" bytes of JSON as apify-client sends them (`{example[:80]}...`), made before each push, untimed.",
        "Satchel: `satchel serve --workers 1` on the embedded engine (sqlite+files) over loopback, driven"
        " by the sync `ApifyClient`: `client.datasets().get_or_create(name='b7')`, then"
        f" `client.dataset(id).push_items(batch)` for {size.pushed // BATCH:,} batches of {BATCH:,} (the"
        " client gzips each body). The rest of the dataset the pages are read from is filled through the"
        f" same endpoint by a plain HTTP client (httpx): `POST /v2/datasets/ID/items` of {FILL_BATCH:,}"
        " items a body, made by orjson and sent uncompressed, one at a time so items keep their order"
        f" ({count:,} items in all afterwards). Then `list_items(offset=o, limit={PAGE:,})` for o = 0 and"
        f" {size.far:,}, {size.reps} times each in turns; every page is checked to start with the item"
        " pushed at its offset. Times are the client's wall clock, its serialisation and validation"
        " included; CPU is the user + system time of the server's processes and of the bench process over"
        " the pushes alone.",
    ]
    times = "once" if size.crawlee_reps == 1 else f"{size.crawlee_reps} times"
    made_text = f"in {made:.0f} s" if made else "reused from the cache in the work dir"
    if why:
        notes.append(f"Crawlee was skipped: {why}.")
    else:
        notes.append(
            "Crawlee 1.11: `Dataset.open(name=..., storage_client=FileSystemStorageClient(),"
            " configuration=Configuration(storage_dir=DIR))` in one process on the local disk (warm page"
            f" cache); `push_data(batch)` for {size.crawlee_pushed // BATCH:,} batches of {BATCH:,} into a"
            f" fresh dataset, and `get_data(offset=o, limit={PAGE:,})` on a dataset of {size.big:,} items,"
            f" {times} each in turns, after Satchel's reads. Crawlee writes a JSON file per item, so its"
            " large dataset was written in that layout directly: the first item by Crawlee, the rest as the"
            f" same files by a process per core ({made_text}). Every `get_data` lists and sorts the whole"
            " folder, at offset 0 as at the far one."
        )
    return notes
