"""A real crawl on Satchel from JavaScript: an Actor written with the Apify SDK for JavaScript and Crawlee's
CheerioCrawler (tests/js/crawl_actor.mjs) runs under `satchel run -- node ...`, crawling the small site of
tests/harness/crawl.py, once with each of Crawlee's request queues (RequestQueue v2, which locks what it
takes from the head, and RequestQueueV1), on every engine; then the run's dataset, request queue and
key-value store are read back with the official Python client through the run's own routes.

The npm packages (tests/js/package.json) are installed from tests/js/package-lock.json with `npm ci` when
tests/js/node_modules lacks them, as tests/test_js_client.py does; skipped only when node or npm is not on
PATH.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, every_engine
from tests.harness.crawl import PAGES, expected, read_back, run_actor, serve_site

server = every_engine()

JS_DIR = Path(__file__).parent / "js"
ACTOR = JS_DIR / "crawl_actor.mjs"
PACKAGES = ("apify", "@crawlee/cheerio")
INSTALL_TIMEOUT = 600


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the JavaScript crawl")
    if not all((JS_DIR / "node_modules" / name / "package.json").exists() for name in PACKAGES):
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, (
            f"npm ci failed ({done.returncode}):\n{(done.stdout + done.stderr)[-5000:]}"
        )
    return node


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve_site() as url:
        yield url


@pytest.mark.parametrize("mode", ["single", "shared"])
def test_js_crawl_under_satchel_run(server: Server, site: str, node: str, mode: str, tmp_path: Path) -> None:
    actor = f"js-crawler-{mode}"
    run_id = run_actor(server, site, actor, [node, str(ACTOR), mode], tmp_path)
    output = {"mode": mode, "finished": PAGES, "failed": 1}
    assert read_back(server, run_id, actor, "SDK_CRAWLER_STATISTICS_0") == expected(site, run_id, output)
