"""This tree against an earlier one, side by side on this machine: B1 (GET 1 KiB) and B2 (PUT 1 KiB), each
beside the bare handler, in turns.

    python -m bench.versus REV [REV ...] [--workers 1,2] [--reps 3] [--seconds 5] [--keys 20000]

A ratio to the bare handler depends on the machine (the same code measured 0.87x on one and 0.55x on
another), so a ratio in an earlier BENCHMARKS.md is only comparable with one measured beside it on the same
machine. Several REVs are measured in the same turns, to place a change among the commits between them. Each
REV is checked out in a temporary git worktree and served from there by this Python; each tree
seeds its own data dir over its own API, so each runs on the schema it knows.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench import servers
from bench.harness import ROOT, Load, ensure_tools, interleaved, load_average
from bench.seed import over_http


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="satchel-versus-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=ROOT, check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def seeded(server: servers.Server, keys: int) -> str:
    """A store named b1 on this server holding keys 0..keys-1 of 1 KiB; its records path."""
    answer = httpx.post(
        f"{server.url}/v2/key-value-stores",
        params={"name": "b1"},
        headers={"authorization": f"Bearer {servers.TOKEN}"},
        timeout=30,
    )
    answer.raise_for_status()
    path = f"/v2/key-value-stores/{answer.json()['data']['id']}/records/"
    over_http(Load(server.url, "seed", path, keys=keys, token=servers.TOKEN))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revs", nargs="+", metavar="rev")
    parser.add_argument("--workers", default="1")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--requests", default="get,put", help="which of get and put, comma-separated")
    args = parser.parse_args()
    ensure_tools(("wrk",))
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, capture_output=True, check=True
    )
    here = f"this tree ({head.stdout.strip()})"
    print(f"{here} against {', '.join(args.revs)}: load average {load_average()}")
    print("| workers | request | tree | req/s (median) | p99 ms | bare handler req/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    with contextlib.ExitStack() as stack:
        trees: dict[str, Path | None] = {here: None}
        trees.update((rev, stack.enter_context(worktree(rev))) for rev in args.revs)
        data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="satchel-versus-data-")))
        logs = data / "logs"
        for workers in (int(w) for w in args.workers.split(",")):
            with contextlib.ExitStack() as running:
                served = {
                    name: running.enter_context(
                        servers.satchel(
                            data / f"{n}-{workers}", workers=workers, cpus=None, logs=logs, tree=tree
                        )
                    )
                    for n, (name, tree) in enumerate(trees.items())
                }
                bare = running.enter_context(servers.ceiling(workers=workers, cpus=None, logs=logs))
                paths = {name: seeded(server, args.keys) for name, server in served.items()}
                urls = {name: server.url for name, server in served.items()}
                for mode in args.requests.split(","):
                    loads = {
                        name: Load(urls[name], mode, path, keys=args.keys, token=servers.TOKEN)
                        for name, path in paths.items()
                    }
                    loads["bare"] = Load(bare.url, mode, "/records/", keys=args.keys)
                    found = interleaved(loads, seconds=args.seconds, reps=args.reps, warmup=2, cpus=None)
                    ceiling = found["bare"].median("rps")
                    for name in paths:
                        rps = found[name].median("rps")
                        print(
                            f"| {workers} | {mode.upper()} 1 KiB | {name} | {rps:,.0f} |"
                            f" {found[name].median('p99_ms'):.2f} | {ceiling:,.0f} | {rps / ceiling:.2f}x |",
                            flush=True,
                        )


if __name__ == "__main__":
    main()
