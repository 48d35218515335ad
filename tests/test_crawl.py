"""A real crawl on Satchel: an Actor written with the Apify SDK and Crawlee (tests/sdk/crawl_actor.py) runs
under `satchel run`, crawling a small site served here on loopback, once in each of the SDK's request-queue
modes, on every engine; then the run's dataset, request queue and key-value store are read back with the
official client through the run's own routes.

The site: seven pages linked to each other, with a duplicate link, a link with a fragment (the same page to
Crawlee), a link off the site (not followed) and a link to a page that answers 404 (tried, failed, handled).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from apify_client import ApifyClient

from tests.conftest import Server, every_engine

server = every_engine()

ACTOR = Path(__file__).parent / "sdk" / "crawl_actor.py"
LINKS = {
    "/": [
        "/a.html",
        "/b.html",
        "/c.html",
        "/a.html",
        "/b.html#part",
        "/missing.html",
        "http://example.invalid/",
    ],
    "/a.html": ["/d.html", "/e.html", "/"],
    "/b.html": ["/", "/c.html"],
    "/c.html": ["/f.html"],
    "/d.html": ["/"],
    "/e.html": ["/a.html"],
    "/f.html": ["/b.html#part", "/missing.html"],
}
TITLES = {path: f"Page {path.strip('/').removesuffix('.html') or 'home'}" for path in LINKS}
CRAWL_SECONDS = (
    60  # a crawl of eight pages takes a few seconds; one that stalls fails here, not at the timeout
)


class Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        links = LINKS.get(self.path)
        if links is None:
            body, status = b"<html><title>Not found</title></html>", 404
        else:
            anchors = "".join(f'<a href="{href}">{href}</a> ' for href in links)
            body = (
                f"<html><head><title>{TITLES[self.path]}</title></head><body>{anchors}</body></html>".encode()
            )
            status = 200
        self.send_response(status)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.mark.parametrize("mode", ["single", "shared"])
def test_crawl_under_satchel_run(server: Server, site: str, mode: str, tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SATCHEL_", "APIFY_", "CRAWLEE_"))
    }
    env |= {
        "SATCHEL_URL": server.base_url,
        "SATCHEL_TOKEN": server.token,
        "CRAWLEE_STORAGE_DIR": str(tmp_path / "local-storage"),  # must stay unused: storage is Satchel's
    }
    command = [sys.executable, "-m", "satchel", "run", "--actor", f"crawler-{mode}"]
    command += ["--input", json.dumps({"start": site + "/"}), "--", sys.executable, str(ACTOR), mode]
    started = time.monotonic()
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=CRAWL_SECONDS * 2, check=False
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-5000:]
    assert took < CRAWL_SECONDS, f"the crawl took {took:.1f} s:\n{done.stderr[-5000:]}"
    run_id = done.stderr.splitlines()[0].split()[3]

    client = ApifyClient(server.token, api_url=server.base_url)
    run = client.run(run_id)
    got = run.get()
    assert got is not None
    assert (got.status, got.exit_code, got.status_message) == ("SUCCEEDED", 0, "Crawled 7 pages")
    assert got.is_status_message_terminal is True

    # Every page once, the 404 page never; the fragment and the duplicate were the same requests.
    items = run.dataset().list_items().items
    pages = {site + path: title for path, title in TITLES.items()}
    assert sorted(item["url"] for item in items) == sorted(pages)
    assert all(item["title"] == pages[item["url"]] for item in items)
    dataset = run.dataset().get()
    assert dataset is not None
    assert dataset.item_count == len(pages)

    # Every request handled (the 404 after its retries), none pending, none locked.
    queue = run.request_queue().get()
    assert queue is not None
    assert (queue.total_request_count, queue.handled_request_count, queue.pending_request_count) == (8, 8, 0)
    requests = run.request_queue().list_requests().items
    assert sorted(r.url for r in requests) == sorted([*pages, site + "/missing.html"])
    assert all(r.handled_at is not None for r in requests)
    assert run.request_queue().list_head().items == []

    store = run.key_value_store()
    assert store.get_record("INPUT")["value"] == {"start": site + "/"}  # type: ignore[index]
    output = store.get_record("OUTPUT")["value"]  # type: ignore[index]
    assert output == {"mode": mode, "finished": 7, "failed": 1}
    statistics = store.get_record("__CRAWLER_STATISTICS_0")
    assert statistics is not None
    assert statistics["value"]["requestsFinished"] == 7
    # The Actor's last run is this one, and its storages are reached through it too.
    last = client.actor(f"~crawler-{mode}").last_run()
    assert last.get().id == run_id  # type: ignore[union-attr]
    assert len(last.dataset().list_items().items) == len(pages)
    assert not (tmp_path / "local-storage").exists() or not any((tmp_path / "local-storage").rglob("*.json"))
