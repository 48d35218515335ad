"""Run the benchmark suite and write BENCHMARKS.md.

    python -m bench.run                 # the full run of issue 4 (about 20 minutes), writes BENCHMARKS.md
    python -m bench.run --smoke --out /tmp/b.md   # seconds, tiny, no targets or peers: checks the harness
    python -m bench.run --only B1,B3    # some figures only
    python -m bench.run --only B9       # scale-out: postgres+s3 beside sqlite+files, 2 nodes behind nginx

Work files (seeded stores, logs, caches of the large seeded stores) go to bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import datasets, figures, queues, report, scaleout, volume
from bench.harness import ROOT, ensure_tools, load_average, which

ALL = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9")


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and 1 s runs, to check the harness")
    parser.add_argument("--out", type=Path, default=None, help="report file (default: BENCHMARKS.md)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "results", help="work folder")
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated figures to run")
    parser.add_argument(
        "--pin", action="store_true", help="pin a one-process server to CPU 0 and wrk to CPU 1"
    )
    parser.add_argument("--no-peers", action="store_true", help="skip nginx and SeaweedFS (--smoke does)")
    args = parser.parse_args(argv)
    # A plain `kill` of the bench still runs every `finally`, so no server it started outlives it.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    if args.smoke:
        args.no_peers = True

    work = args.work.resolve()
    plan = figures.Plan.smoke_run(work) if args.smoke else figures.Plan(work=work)
    plan.pin = args.pin
    missing = ensure_tools(("wrk",) if args.no_peers else ("wrk", "nginx"))
    if "wrk" in missing:
        print("wrk is missing and could not be installed (apt-get install wrk)", file=sys.stderr)
        return 2
    plan.with_peers = not args.no_peers and "nginx" not in missing and which("weed") is not None
    if not plan.with_peers and not args.no_peers:
        print("nginx or weed is missing: peers are skipped", file=sys.stderr)
    wanted = [name.strip().upper() for name in args.only.split(",") if name.strip()]
    out = args.out or (ROOT / ("BENCHMARKS.md" if not args.smoke else "bench/results/SMOKE.md"))
    work.mkdir(parents=True, exist_ok=True)

    began = time.perf_counter()
    env = figures.environment()
    done: list[figures.Figure] = []
    shared = None
    if {"B1", "B2", "B5"} & set(wanted):
        shared = figures.shared_store(plan)
    steps: dict[str, Callable[[], list[figures.Figure]]] = {
        "B1": lambda: figures.b1_b2(plan, shared) if shared else [],
        "B3": lambda: [volume.b3(plan)],
        "B4": lambda: [volume.b4(plan)],
        "B5": lambda: [volume.b5(plan, shared)] if shared else [],
        "B6": lambda: [figures.b6(plan)],
        "B7": lambda: [datasets.b7(plan)],
        "B8": lambda: [queues.b8(plan)],
        "B9": lambda: [scaleout.b9(plan)],
    }
    for name, step in steps.items():
        if name in wanted or (name == "B1" and "B2" in wanted):
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            found = step()
            if name == "B1":
                found = [f for f in found if f.name in wanted]
            done += found
            print(
                f"[bench] {name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True
            )
    text = report.render(done, plan, env, load_average(), time.perf_counter() - began)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"[bench] wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
