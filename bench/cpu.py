"""Where a server's CPU goes per request: each thread of each of its processes, from /proc, under wrk.

    python -m bench.cpu [REV ...] [--workers 1] [--keys 100000] [--seconds 10] [--requests get]

Each tree (this one, then each REV from a temporary worktree) is served in turn, seeded with `--keys` records
of 1 KiB over its own API, warmed for 4 s, then loaded for `--seconds` while its threads' CPU times (user and
system), context switches and minor page faults are read before and after. Figures are per request answered
in that window, so a thread that did its work in fewer requests shows as dearer. Throughput alone says a
change is slower; this says in which thread, and whether in Python (user) or the kernel (system): bench/
findings.md's thirteenth round found a GIL release on a worker's event loop thread costing it more than the
work done meanwhile, which only a per-thread view shows.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import servers
from bench.harness import Load, ensure_tools, load_average, wrk
from bench.versus import seeded, worktree

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Times:
    user: float  # seconds
    system: float
    switches: int  # voluntary and involuntary context switches
    faults: int  # minor page faults


def _descendants(root: int) -> list[int]:
    """`root` and every process under it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _threads(pids: list[int]) -> dict[tuple[int, int, str], Times]:
    """Each thread's times so far, by (process, thread, thread name)."""
    seen = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                    name = raw[raw.index("(") + 1 : raw.rindex(")")]
                    fields = raw.rsplit(")", 1)[1].split()
                    status = Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines()
                    switches = sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
                    seen[(pid, int(tid), name)] = Times(
                        int(fields[11]) / TICKS, int(fields[12]) / TICKS, switches, int(fields[7])
                    )
    return seen


def measure(server: servers.Server, load: Load, seconds: float) -> tuple[float, list[str]]:
    """Requests a second, and a line per busy thread: its CPU, switches and faults per request."""
    wrk(load, 4)
    pids = _descendants(server.proc.pid)
    before = _threads(pids)
    run = wrk(load, seconds)
    after = _threads(pids)
    lines = []
    for key, end in sorted(after.items(), key=lambda kv: -(kv[1].user + kv[1].system)):
        start = before.get(key, Times(0, 0, 0, 0))
        user, system = end.user - start.user, end.system - start.system
        if user + system < 0.05:  # idle: not worth a line
            continue
        per = 1e6 / run.requests
        pid, tid, name = key
        lines.append(
            f"| {pid}/{tid} {name} | {(user + system) * per:.1f} | {user * per:.1f} |"
            f" {(end.switches - start.switches) / run.requests:.2f} |"
            f" {(end.faults - start.faults) / run.requests:.2f} |"
        )
    return run.rps, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revs", nargs="*", metavar="rev")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--requests", default="get", choices=("get", "put"))
    args = parser.parse_args()
    ensure_tools(("wrk",))
    print(f"load average {load_average()}; {args.workers} worker(s), {args.keys:,} keys, {args.requests}")
    with contextlib.ExitStack() as stack:
        trees: dict[str, Path | None] = {"this tree": None}
        trees.update((rev, stack.enter_context(worktree(rev))) for rev in args.revs)
        data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="satchel-cpu-data-")))
        for n, (name, tree) in enumerate(trees.items()):
            with servers.satchel(
                data / str(n), workers=args.workers, cpus=None, logs=data / "logs", tree=tree
            ) as server:
                path = seeded(server, args.keys)
                load = Load(server.url, args.requests, path, keys=args.keys, token=servers.TOKEN)
                rps, lines = measure(server, load, args.seconds)
            print(f"\n{name}: {rps:,.0f} req/s")
            print("| process/thread | CPU us/request | of it user | switches/request | faults/request |")
            print("|---|---|---|---|---|")
            print("\n".join(lines))


if __name__ == "__main__":
    main()
