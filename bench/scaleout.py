"""B9, scale-out: Satchel on PostgreSQL and S3 beside the embedded engine, and two nodes behind nginx.

In one run: a throwaway PostgreSQL cluster and SeaweedFS (bench/backends.py), a sqlite+files node, two
postgres+s3 nodes on one database and bucket, and one nginx with two ports (one proxying to node A, one
round-robin over A and B). Each group of workloads runs in turns, so the embedded engine is measured in the
same minutes as the scale-out one.

    python -m bench.run --only B9            # this figure alone (full size: about 8 minutes)
    python -m bench.run --only B9 --smoke --out /tmp/b.md
"""

from __future__ import annotations

import contextlib
import shutil
import time

from bench import servers
from bench.backends import BUCKET, EMBEDDED, SCALE, Backends, backends, missing_backends, seed_stores
from bench.figures import Figure, Plan, Row, latencies, mixed_load, p99, ratio, record_path, rps
from bench.harness import Load, Series, interleaved, watched, which


def _pair(what: str, scale: Series, embedded: Series) -> list[Row]:
    """The scale-out engine against the embedded one: throughput, then p99."""
    r = ratio(scale.median("rps"), embedded.median("rps"))
    r99 = ratio(scale.median("p99_ms"), embedded.median("p99_ms"))
    return [
        Row("B9", what, f"{SCALE}: {rps(scale)}", f"{EMBEDDED}: {rps(embedded)}", f"{r:.2f}x", "(reported)",
            None),
        Row("B9", f"{what}: p99", f"{SCALE}: {p99(scale)}", f"{EMBEDDED}: {p99(embedded)}", f"{r99:.2f}x",
            "(reported)", None),
    ]  # fmt: skip


def _nodes(what: str, two: Series, one: Series) -> Row:
    r = ratio(two.median("rps"), one.median("rps"))
    return Row("B9", what, f"2 nodes: {rps(two)}", f"1 node: {rps(one)}", f"{r:.2f}x", "(reported)", None)


def _tail(s: Series) -> str:
    return f"{rps(s)}, {latencies(s)}, errors {s.errors}"


def _mixed(what: str, scale: Series, scale_name: str, other: Series, other_name: str) -> Row:
    """B6's load on two setups: throughput, the latency tail and the errors of each."""
    r = ratio(scale.median("rps"), other.median("rps"))
    mine, theirs = f"{scale_name}: {_tail(scale)}", f"{other_name}: {_tail(other)}"
    return Row("B9", what, mine, theirs, f"{r:.2f}x", "(reported)", None)


def _pages(kind: str, big_n: int, big: Series, small: Series) -> Row:
    r50 = ratio(big.median("p50_ms"), small.median("p50_ms"))
    r99 = ratio(big.median("p99_ms"), small.median("p99_ms"))
    return Row(
        "B9",
        f"{SCALE} {kind} latency p50 (p99)",
        f"{big_n:,} keys: {big.median('p50_ms'):.2f} ms ({big.median('p99_ms'):.2f})",
        f"1k keys: {small.median('p50_ms'):.2f} ms ({small.median('p99_ms'):.2f})",
        f"{r50:.2f}x ({r99:.2f}x)",
        "<= 1.3x",
        r50 <= 1.3,
    )


def b9(plan: Plan) -> Figure:
    fig = Figure(
        "B9", f"scale-out: {SCALE} beside {EMBEDDED}, and two {SCALE} nodes behind nginx against one"
    )
    began = time.perf_counter()
    why = missing_backends()
    if why:
        fig.rows.append(Row("B9", f"scale-out ({SCALE})", f"skipped: {why}", "", "", "(reported)", None))
        fig.notes.append(f"Skipped: {why}.")
        return fig
    with contextlib.ExitStack() as stack:
        back = stack.enter_context(backends(plan))
        stores = seed_stores(plan, back, fig)

        def node(name: str, env: dict[str, str] | None = None) -> servers.Server:
            data_dir = plan.work / name
            satchel = servers.satchel(data_dir, workers=1, cpus=None, logs=plan.logs, env=env)
            return stack.enter_context(satchel)

        for name in ("b9-node-a", "b9-node-b"):
            shutil.rmtree(plan.work / name, ignore_errors=True)
        lite, node_a = node("b9-sqlite"), node("b9-node-a", back.node_env)
        urls = {EMBEDDED: lite.url, SCALE: node_a.url}
        nodes = {EMBEDDED: lite, f"{SCALE} node A": node_a}
        proxies: dict[str, servers.Server] = {}
        if which("nginx"):
            node_b = nodes[f"{SCALE} node B"] = node("b9-node-b", back.node_env)
            upstreams = {"1 node": [node_a.url], "2 nodes": [node_a.url, node_b.url]}
            proxies = stack.enter_context(servers.nginx_proxy(upstreams, workers=1, logs=plan.logs))
        for label, server in nodes.items():
            stack.enter_context(watched(server.proc, f"{label}, over all of B9's loads", fig.memory))

        def record(url: str, store: str, mode: str, n: int, fmt: str = "k%06d", conns: int = 32) -> Load:
            path = record_path(store)
            return Load(url, mode, path, fmt=fmt, keys=n, token=servers.TOKEN, connections=conns)

        def listing(store: str, query: str, fmt: str, n: int) -> Load:
            path = f"/v2/key-value-stores/{store}/keys"
            return Load(
                node_a.url, "list", path, fmt=fmt, keys=n, query=query, token=servers.TOKEN, connections=1
            )

        def run(
            loads: dict[str, Load], seconds: float = plan.seconds, reps: int = plan.reps
        ) -> dict[str, Series]:
            # Several server processes in play: wrk is never pinned here.
            found = interleaved(loads, seconds=seconds, reps=reps, warmup=plan.warmup, cpus=None)
            fig.series += found.values()
            return found

        for mode, verb in (("get", "GET"), ("put", "PUT")):
            what = f"{verb} 1 KiB"
            loads = {f"{e} {what}": record(u, stores.small[e], mode, plan.keys) for e, u in urls.items()}
            for count, proxy in proxies.items():
                loads[f"{SCALE} {what}, nginx -> {count}"] = record(
                    proxy.url, stores.small[SCALE], mode, plan.keys
                )
            got = run(loads)
            fig.rows += _pair(f"{what}, one node", got[f"{SCALE} {what}"], got[f"{EMBEDDED} {what}"])
            if proxies:
                two, one = got[f"{SCALE} {what}, nginx -> 2 nodes"], got[f"{SCALE} {what}, nginx -> 1 node"]
                fig.rows.append(_nodes(f"{what} behind nginx: 2 nodes against 1", two, one))

        mixed, secs = "mixed 90/10", plan.scale_mixed_seconds
        loads = {f"{e} {mixed}": mixed_load(u, stores.mixed[e], plan.mixed_keys) for e, u in urls.items()}
        for count, proxy in proxies.items():
            loads[f"{SCALE} {mixed}, nginx -> {count}"] = mixed_load(
                proxy.url, stores.mixed[SCALE], plan.mixed_keys
            )
        got = run(loads, secs, 1)
        what = f"{mixed} (B6's load, {secs:.0f} s)"
        scale, embedded = got[f"{SCALE} {mixed}"], got[f"{EMBEDDED} {mixed}"]
        fig.rows.append(_mixed(f"{what}, one node", scale, SCALE, embedded, EMBEDDED))
        if proxies:
            two, one = got[f"{SCALE} {mixed}, nginx -> 2 nodes"], got[f"{SCALE} {mixed}, nginx -> 1 node"]
            fig.rows.append(_mixed(f"{what} behind nginx: 2 nodes against 1", two, "2 nodes", one, "1 node"))

        n = plan.large_records
        got = run(
            {f"{e} GET 1 MiB": record(u, stores.large[e], "get", n, "m%03d", 8) for e, u in urls.items()}
        )
        scale, embedded = got[f"{SCALE} GET 1 MiB"], got[f"{EMBEDDED} GET 1 MiB"]
        row = _pair("GET 1 MiB (S3 object; file), one node, 8 connections", scale, embedded)[0]
        row.satchel += f" = {scale.median('rps'):,.0f} MiB/s"
        row.reference += f" = {embedded.median('rps'):,.0f} MiB/s"
        fig.rows.append(row)

        big_n, groups = plan.list_groups * 1000, max(1, plan.list_groups - 1)
        small, big = f"{SCALE} list, 1k keys", f"{SCALE} list, {big_n:,} keys"
        got = run(
            {
                small: listing(stores.list_1k, "?limit=1000", "", 1),
                big: listing(stores.list_big, "?limit=1000&exclusiveStartKey=", "g%03d-0000", groups),
                f"{small}, prefix": listing(stores.list_1k, "?limit=1000&prefix=", "g000-", 1),
                f"{big}, prefix": listing(stores.list_big, "?limit=1000&prefix=", "g%03d-", plan.list_groups),
            }
        )
    for kind, suffix in (("page", ""), ("prefix page", ", prefix")):
        fig.rows.append(_pages(kind, big_n, got[big + suffix], got[small + suffix]))
    fig.notes += _notes(back, bool(proxies))
    fig.notes.append(_mixed_note(plan))
    fig.seconds = time.perf_counter() - began
    return fig


def _mixed_note(plan: Plan) -> str:
    return (
        f"The {plan.mixed_keys:,}-record stores of the mixed rows hold B6's records (1-100 KiB, all inline:"
        " in the SQLite file, or PostgreSQL rows, so S3 is not on this path) and take B6's load (90% GET,"
        " 10% PUT of 1-100 KiB, 64 connections), once for {plan.scale_mixed_seconds:.0f} s after a"
        f" {plan.warmup:.0f} s warm-up (B6 itself runs {plan.mixed_seconds:.0f} s), in turns: the"
        f" {EMBEDDED} node, {SCALE} node A directly, then nginx -> 1 node and nginx -> 2 nodes. Max is the"
        " longest single request wrk saw (the longest stall)."
    )


def _notes(back: Backends, proxied: bool) -> list[str]:
    notes = [
        "Run alone with `python -m bench.run --only B9`. Every node is `satchel serve --workers 1 --data-dir"
        " DIR` with `SATCHEL_TOKEN`, `SATCHEL_RATE_LIMIT=off`; the postgres+s3 nodes (each its own data dir)"
        " add `SATCHEL_DATABASE=postgresql://postgres@127.0.0.1:PORT/satchel`,"
        f" `SATCHEL_BLOB_STORE=s3://{BUCKET}?endpoint=http://127.0.0.1:PORT` and the S3 credentials"
        " (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`). Records up to 128 KiB are inline (in the SQLite"
        " file, or a PostgreSQL row), so the 1 KiB rows measure the metadata path; 1 MiB records are files"
        " (sqlite+files) or S3 objects (postgres+s3).",
        f"PostgreSQL {back.version} is the test suite's throwaway cluster (tests/harness/postgres.py) on"
        " loopback: `fsync=off` and `full_page_writes=off` (commits reach the OS, not the disk),"
        " `synchronous_commit` on, `shared_buffers=64MB`. The embedded engine runs with its default"
        " durability (`process`: WAL, synchronous=NORMAL, no fsync per commit either). S3 is SeaweedFS"
        " `weed mini` (tests/harness/seaweed.py), every request signed with one configured identity.",
    ]
    if proxied:
        notes.append(
            "nginx -> 1 node and nginx -> 2 nodes are two ports of one nginx (1 worker process; upstreams"
            " over HTTP/1.1 with `keepalive 64`, round robin), in front of node A, and of nodes A and B (same"
            " database, bucket and token). Both go through the proxy hop, so their ratio is the second node's"
            " effect. This machine has 2 cores shared by wrk, nginx, both nodes, PostgreSQL and SeaweedFS: a"
            " second node adds a process, not a core, and the ratio says what that is worth here, not what"
            " two machines would do. Every PUT locks its store's row, so PUTs to one store commit one at a"
            " time whichever node takes them."
        )
    else:
        notes.append("nginx is not installed: the two-node rows were skipped.")
    return notes
