"""BENCHMARKS.md: the summary table, then each figure's runs and the exact commands."""

from __future__ import annotations

import platform
import time
from pathlib import Path

from bench.figures import Figure, Plan

HERE = Path(__file__).resolve().parent


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: ""}[met]


def _missed(figures: list[Figure]) -> list[str]:
    """One short section per missed target: by how much, and what the profile of that load shows."""
    out: list[str] = []
    for fig in figures:
        missed = [row for row in fig.rows if row.met is False]
        if not missed:
            continue
        out.append(f"### Missed: {fig.name}\n")
        for row in missed:
            out.append(f"- {row.what}: {row.ratio or row.satchel} against a target of {row.target}.")
        out += [f"- {note}" for note in fig.notes if note.startswith("Profile of")]
        out.append("")
    return (["## Missed targets\n", *out]) if out else []


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _memory(figures: list[Figure]) -> list[str]:
    """One row per workload: the server's RSS before, at the peak under, and after it."""
    rows = [
        f"| {fig.name}: {m.workload} | {_mib(m.before)} | {_mib(m.peak)} | {_mib(m.after)} |"
        for fig in figures
        for m in fig.memory
    ]
    if not rows:
        return []
    return [
        "## Server memory\n",
        "Satchel's resident memory around each workload, summed over the server's processes (the main process"
        " and its workers): before the load (VmRSS; at rest after start and seeding unless the row says"
        " otherwise), the peak under it (VmHWM, each process's own peak since a reset just before the load,"
        " summed: an upper bound, as the processes need not peak at the same moment), and after it once the"
        " load has stopped (VmRSS). Pages shared by the processes count once per process. A peak that stays"
        " near the before-figure, and an after-figure that falls back, show that caches stay bounded.\n",
        "| workload | before load | peak under load | after load |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def render(figures: list[Figure], plan: Plan, env: dict[str, str], load_after: str, total: float) -> str:
    out: list[str] = []
    add = out.append
    add("# Benchmarks\n")
    add(
        "Written by `make bench` (`python -m bench.run`); every figure measures Satchel and its references in"
        " the same run, on the same machine, in turns. Do not edit by hand: the text around the numbers lives"
        " in `bench/report.py` and `bench/findings.md`.\n"
    )
    add(f"- When: {time.strftime('%Y-%m-%d %H:%M %Z')}; the whole run took {total / 60:.1f} min.")
    add(f"- Machine: {env['cpu']}, Python {platform.python_version()}, {platform.platform()}.")
    add(
        f"- Load average (1, 5, 15 min) before: {env['load']}; after: {load_after}. The machine is shared"
        " with other work, so absolute numbers swing from minute to minute; the ratios compare runs made"
        " in turns within the same minutes."
    )
    add(f"- Tools: {env['wrk']}; {env['nginx']}; SeaweedFS {env['seaweedfs']}.")
    pin = (
        "pinned with taskset (server on CPU 0, wrk on CPU 1) where the server has one process"
        if plan.pin
        else "not pinned (the scheduler places server and wrk on the 2 cores; pinning was measured to lower"
        " every server's numbers on this shared machine)"
    )
    add(
        f"- Method: wrk with one thread (`-t1`) and `bench/lua/kv.lua` (random keys, PUT bodies), {pin};"
        f" {plan.warmup:.0f} s warm-up per workload, then {plan.reps} runs of {plan.seconds:.0f} s each,"
        " in turns (A B C, A B C, ...). Figures are medians with the spread (min-max) in brackets."
        " Servers run with rate limits off (`SATCHEL_RATE_LIMIT=off`), on the embedded engine (B8 and B9"
        " also on PostgreSQL and S3), over loopback. B5, B7 and B8 are driven by the official clients, not"
        " wrk: their sections say how. Latency columns are wrk's percentiles; max is the longest single"
        " request (the longest stall a client saw), p99.9 and max are medians over the runs like the rest.\n"
    )
    if plan.smoke:
        add("**Smoke run**: tiny sizes and 1-second runs; the numbers only show the harness works.\n")

    add("## Summary\n")
    add("| figure | what | Satchel | reference | ratio | target | |")
    add("|---|---|---|---|---|---|---|")
    for fig in figures:
        for row in fig.rows:
            add(
                f"| {row.figure} | {row.what} | {row.satchel} | {row.reference} | {row.ratio} | {row.target}"
                f" | {'' if plan.smoke else _mark(row.met)} |"
            )
    add("")
    out += _memory(figures)

    if not plan.smoke:
        out += _missed(figures)
    findings = HERE / "findings.md"
    if findings.exists() and not plan.smoke:
        add(findings.read_text().rstrip() + "\n")

    add("## Figures in detail\n")
    for fig in figures:
        add(f"### {fig.name}: {fig.title}\n")
        for note in fig.notes:
            add(f"- {note}")
        if fig.notes:
            add("")
        if fig.series:
            add(
                "| workload | req/s per run | median req/s | p50 ms | p99 ms (spread) | p99.9 ms | max ms"
                " | errors |"
            )
            add("|---|---|---|---|---|---|---|---|")
            for s in fig.series:
                runs = ", ".join(f"{r.rps:,.0f}" for r in s.runs)
                low, high = s.spread("p99_ms")
                add(
                    f"| {s.label} | {runs} | {s.median('rps'):,.0f} | {s.median('p50_ms'):.2f}"
                    f" | {s.median('p99_ms'):.2f} ({low:.2f}-{high:.2f}) | {s.median('p999_ms'):.2f}"
                    f" | {s.median('max_ms'):,.0f} | {s.errors} |"
                )
            add("")
            add("Commands (run from the repository root, against the server each row names):\n")
            add("```sh")
            for s in fig.series:
                add(f"# {s.label}")
                add(s.command)
            add("```\n")
        add(f"This figure took {fig.seconds:.0f} s.\n")
    return "\n".join(out)
