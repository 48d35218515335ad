"""A real crawl on Satchel: an Actor written with the Apify SDK and Crawlee (tests/sdk/crawl_actor.py) runs
under `satchel run`, crawling a small site served here on loopback (tests/harness/crawl.py), once in each
of the SDK's request-queue modes, on every engine; then the run's dataset, request queue and key-value
store are read back with the official client through the run's own routes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, every_engine
from tests.harness.crawl import PAGES, expected, read_back, run_actor, serve_site

server = every_engine()

ACTOR = Path(__file__).parent / "sdk" / "crawl_actor.py"


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve_site() as url:
        yield url


@pytest.mark.parametrize("mode", ["single", "shared"])
def test_crawl_under_satchel_run(server: Server, site: str, mode: str, tmp_path: Path) -> None:
    actor = f"crawler-{mode}"
    run_id = run_actor(server, site, actor, [sys.executable, str(ACTOR), mode], tmp_path)
    output = {"mode": mode, "finished": PAGES, "failed": 1}
    assert read_back(server, run_id, actor, "__CRAWLER_STATISTICS_0") == expected(site, run_id, output)
