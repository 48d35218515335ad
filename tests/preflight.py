"""What `make test` needs beyond the virtualenv, checked before anything runs: one line per missing tool,
with the Debian package that brings it (.ci/run installs them all).

Without PostgreSQL the engine suites cannot run, so the check fails; any other missing tool only skips the
tests that need it, and those say so. `--strict` (what .ci/run passes) fails on any missing tool, so CI
never skips a suite silently. Nothing is installed here: running tests never installs system packages.

    python -m tests.preflight [--strict]
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def _on_path(name: str) -> Callable[[], bool]:
    return lambda: shutil.which(name) is not None


def _postgres() -> bool:
    """initdb and pg_ctl on PATH or where Debian puts them, and the postgres user the clusters run as."""
    folders = [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep)]
    folders += sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    binaries = all(any((folder / name).exists() for folder in folders) for name in ("initdb", "pg_ctl"))
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return binaries


@dataclass(frozen=True)
class Tool:
    name: str
    package: str  # what `apt-get install` takes
    used_by: str
    present: Callable[[], bool]
    required: bool = False  # False: the tests that need it are skipped, saying why


TOOLS = (
    Tool(
        "PostgreSQL (initdb, pg_ctl, the postgres user)",
        "postgresql",
        "the postgres+files and postgres+s3 runs of the engine suites (every_engine)",
        _postgres,
        required=True,
    ),
    Tool(
        "redis-server",
        "redis-server",
        "the shared rate-limit counters (tests/test_rate_limit.py)",
        _on_path("redis-server"),
    ),
    Tool(
        "node",
        "nodejs",
        "the JavaScript suites (tests/test_js_client.py, test_crawl_js.py)",
        _on_path("node"),
    ),
    Tool("npm", "npm", "the JavaScript suites (tests/test_js_client.py, test_crawl_js.py)", _on_path("npm")),
    Tool(
        "chromium",
        "chromium",
        "the Console suites (tests/test_console*.py, through Playwright)",
        lambda: bool(shutil.which("chromium") or shutil.which("chromium-browser")),
    ),
    Tool("wrk", "wrk", "the benchmark smoke run (tests/test_bench_smoke.py)", _on_path("wrk")),
    Tool("curl", "curl", "the benchmark smoke run (tests/test_bench_smoke.py)", _on_path("curl")),
)


def main(argv: list[str]) -> int:
    strict = "--strict" in argv
    missing = [tool for tool in TOOLS if not tool.present()]
    if not missing:
        print("preflight: every tool the tests use is here (" + "; ".join(t.name for t in TOOLS) + ").")
        return 0
    for tool in missing:
        outcome = "cannot run without it" if tool.required or strict else "skipped without it"
        print(f"preflight: missing {tool.name} (apt-get install {tool.package}); {outcome}: {tool.used_by}.")
    packages = " ".join(dict.fromkeys(tool.package for tool in missing))
    if strict or any(tool.required for tool in missing):
        print(f"preflight: stopping before the tests. All at once: sudo apt-get install {packages}")
        return 1
    print(f"preflight: running the rest. All at once: sudo apt-get install {packages}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
