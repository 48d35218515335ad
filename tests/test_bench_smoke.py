"""The benchmark harness runs end to end (`python -m bench.run --smoke`): every figure comes out with numbers.

Only the harness is checked here; the targets of the figures live in BENCHMARKS.md, never in a test.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys

import pytest

from bench.harness import ROOT, ensure_tools

FIGURES = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9")
NUMBER = re.compile(r"\d[\d,]*(\.\d+)?")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    # Never installed from here: running tests installs no system packages (`make test` says what is missing).
    if ensure_tools(("wrk",), install=False) or shutil.which("curl") is None:
        pytest.skip("the benchmark needs wrk and curl (apt-get install wrk curl)")
    work = tmp_path_factory.mktemp("bench", numbered=False)
    out = work / "SMOKE.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--work", str(work), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out.read_text()


def _rows(report: str, figure: str) -> list[list[str]]:
    rows = [line.split("|")[1:-1] for line in report.splitlines() if line.startswith(f"| {figure} |")]
    return [[cell.strip() for cell in row] for row in rows]


@pytest.mark.parametrize("figure", FIGURES)
def test_every_figure_has_numbers(report: str, figure: str) -> None:
    rows = _rows(report, figure)
    assert rows, f"{figure} is missing from the summary"
    satchel = [row[2] for row in rows]
    assert all(NUMBER.search(cell) for cell in satchel), satchel
    assert not any("nan" in cell for row in rows for cell in row), rows


def test_b6_shows_the_latency_tail(report: str) -> None:
    """The mixed load reports p99.9 and the longest stall beside p50 and p99, and the WAL left behind."""
    (row,) = _rows(report, "B6")
    for label in ("p50", "p99", "p99.9", "max"):
        assert re.search(rf"\b{re.escape(label)} \d[\d,]*(\.\d+)? ms", row[2]), row
    assert "WAL after" in row[3], row


def test_every_workload_has_a_memory_figure(report: str) -> None:
    """Server RSS before, at the peak under and after each load, for the figures that run a server."""
    lines = report.split("## Server memory", 1)[1].split("\n## ", 1)[0].splitlines()
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines if line.startswith("| B")]
    for figure in ("B1", "B2", "B6", "B7", "B8"):
        mine = [row for row in rows if row[0].startswith(f"{figure}: ")]
        assert mine, f"{figure} has no memory row"
        for row in mine:
            before, peak, _after = (int(cell.removesuffix(" MiB").replace(",", "")) for cell in row[1:])
            assert 0 < before <= peak, row


def test_the_report_names_its_commands_and_load(report: str) -> None:
    assert "Load average" in report
    assert "wrk -t1 -c32" in report
    assert "Smoke run" in report


def test_no_server_outlives_the_run(report: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every server the run started (one log per server, named for its port) has stopped listening."""
    logs = list((tmp_path_factory.getbasetemp() / "bench" / "logs").glob("*-*.log"))
    assert logs
    for log in logs:
        port = int(log.stem.rsplit("-", 1)[1])
        with socket.socket() as s, pytest.raises(OSError):
            s.connect(("127.0.0.1", port))
