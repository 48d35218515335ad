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
import signal
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from apify_client import ApifyClient

from tests.conftest import Server, every_engine
from tests.harness.crawl import PAGES, expected, read_back, run_actor, serve_site
from tests.test_run_command import _run_id, _satchel_run

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


def test_a_crawl_stopped_with_ctrl_c_releases_its_locks_for_the_next_run(server: Server, node: str) -> None:
    """Ctrl-C on `satchel run` reaches the crawl (tests/js/abort_actor.mjs) as the platform's `aborting`
    event: Crawlee pauses, releases the requests it had locked, and the SDK exits by itself. So every request
    left can be taken at once by whoever goes on with the queue, instead of after the locks expire."""
    process = _satchel_run(server, "--", node, str(JS_DIR / "abort_actor.mjs"))
    assert process.stdout is not None
    while process.stdout.readline().strip() != "handling":
        assert process.poll() is None, process.communicate()[1]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert "told the run is aborting" in stderr
    client = ApifyClient(server.token, api_url=server.base_url)
    run = client.run(_run_id(stderr)).get()
    assert run is not None
    assert (run.status, run.exit_code) == ("ABORTED", 0), stderr  # ended by itself, before any signal
    queue = client.request_queue(run.default_request_queue_id)
    info = queue.get()
    assert info is not None
    assert 0 < info.pending_request_count < 20, info  # stopped in the middle
    taken = queue.list_and_lock_head(lock_duration=timedelta(seconds=60), limit=25).items
    assert len(taken) == info.pending_request_count
