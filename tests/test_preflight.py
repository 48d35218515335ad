"""`make test`'s first step (tests/preflight.py) names each missing tool with its Debian package, and stops
only where it must: on PostgreSQL always, on anything with --strict (what .ci/run passes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.preflight import TOOLS

ROOT = Path(__file__).resolve().parent.parent


def preflight(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.preflight", *args],
        cwd=ROOT,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_tool_on_path_missing_is_named_with_its_package(tmp_path: Path) -> None:
    done = preflight(path=str(tmp_path))  # an empty folder: nothing is found on PATH
    lines = done.stdout.splitlines()
    for name, package in (("redis-server", "redis-server"), ("node", "nodejs"), ("npm", "npm")):
        assert any(
            line.startswith(f"preflight: missing {name} (apt-get install {package});") for line in lines
        )
    for name in ("chromium", "wrk", "curl"):
        assert any(f"missing {name} " in line for line in lines), done.stdout
    postgres_found = not any("missing PostgreSQL" in line for line in lines)
    # Tools whose tests skip do not stop the run; only a missing PostgreSQL does.
    assert done.returncode == (0 if postgres_found else 1)
    assert "sudo apt-get install redis-server nodejs npm chromium wrk curl" in done.stdout


def test_strict_stops_on_any_missing_tool(tmp_path: Path) -> None:
    done = preflight("--strict", path=str(tmp_path))
    assert done.returncode == 1
    assert "preflight: stopping before the tests." in done.stdout
    assert "cannot run without it: the shared rate-limit counters" in done.stdout


def test_nothing_missing_says_so() -> None:
    done = preflight(path=os.environ.get("PATH", ""))
    missing = [tool.name for tool in TOOLS if not tool.present()]
    if missing:
        assert all(f"missing {name} " in done.stdout for name in missing)
    else:
        assert done.stdout.startswith("preflight: every tool the tests use is here")
        assert done.returncode == 0
