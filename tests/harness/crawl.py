"""What the crawl tests share: the small site served on loopback, an Actor run under `satchel run`, and the
reading back of the run's dataset, request queue and key-value store with the official Python client.

The site: seven pages linked to each other, with a duplicate link, a link with a fragment (the same page to
Crawlee), a link off the site (not followed) and a link to a page that answers 404 (tried, failed, handled).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from apify_client import ApifyClient

from tests.harness.cli import cli_command
from tests.harness.server import Server

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
PAGES = len(TITLES)
# A crawl of eight pages takes a few seconds; one that stalls fails here, not at the timeout.
CRAWL_SECONDS = 60


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


@contextmanager
def serve_site() -> Iterator[str]:
    """The site on a free loopback port; yields its base URL (no trailing slash)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def run_actor(server: Server, site: str, actor: str, command: Sequence[str], tmp_path: Path) -> str:
    """`satchel run --actor ACTOR --input {"start": SITE/} -- COMMAND` in tmp_path; the run's id.

    Nothing of the caller's SDK or Crawlee settings leaks in; the local storage dir is set so that a crawl
    writing there (instead of to Satchel) fails the run here.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SATCHEL_", "APIFY_", "ACTOR_", "CRAWLEE_"))
    }
    env |= {
        "SATCHEL_URL": server.base_url,
        "SATCHEL_TOKEN": server.token,
        "CRAWLEE_STORAGE_DIR": str(tmp_path / "local-storage"),
        "NO_COLOR": "1",
    }
    satchel = cli_command("run", "--actor", actor)
    satchel += ["--input", json.dumps({"start": site + "/"}), "--", *command]
    started = time.monotonic()
    done = subprocess.run(
        satchel, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=CRAWL_SECONDS * 2, check=False
    )
    took = time.monotonic() - started
    output = (done.stdout + done.stderr)[-8000:]
    assert done.returncode == 0, output
    assert took < CRAWL_SECONDS, f"the crawl took {took:.1f} s:\n{output}"
    local = tmp_path / "local-storage"
    assert not local.exists() or not any(local.rglob("*.json")), "the crawl wrote to local storage"
    return done.stderr.splitlines()[0].split()[3]


def read_back(server: Server, run_id: str, actor: str, statistics_key: str) -> dict[str, Any]:
    """What a crawl left, read through the run's routes with the official client, for a test to compare
    with `expected` in one assert (pytest shows the difference; it rewrites no asserts in this module)."""
    client = ApifyClient(server.token, api_url=server.base_url)
    run = client.run(run_id)
    got = run.get()
    assert got is not None
    items = run.dataset().list_items().items
    dataset = run.dataset().get()
    queue = run.request_queue().get()
    assert dataset is not None
    assert queue is not None
    requests = run.request_queue().list_requests().items
    store = run.key_value_store()
    statistics = store.get_record(statistics_key)
    last = client.actor(f"~{actor}").last_run()
    last_run = last.get()
    return {
        "run": (got.status, got.exit_code, got.status_message, got.is_status_message_terminal),
        "items": sorted((item["url"], item["title"]) for item in items),
        "item count": dataset.item_count,
        "request counts": (
            queue.total_request_count,
            queue.handled_request_count,
            queue.pending_request_count,
        ),
        "requests": sorted(r.url for r in requests),
        "unhandled": [r.url for r in requests if r.handled_at is None],
        "head": run.request_queue().list_head().items,
        "INPUT": (store.get_record("INPUT") or {}).get("value"),
        "OUTPUT": (store.get_record("OUTPUT") or {}).get("value"),
        "statistics finished": statistics and statistics["value"]["requestsFinished"],
        # The Actor's last run is this one, and its storages are reached through it too.
        "last run": last_run and last_run.id,
        "last run items": len(last.dataset().list_items().items),
    }


def expected(site: str, run_id: str, output: dict[str, Any]) -> dict[str, Any]:
    """`read_back` of a good crawl of the site: every page once (the fragment and the duplicate links were
    the same requests, the 404 page is no item), every request handled (the 404 after its retry), none
    pending or locked, OUTPUT as the Actor wrote it."""
    pages = sorted((site + path, title) for path, title in TITLES.items())
    return {
        "run": ("SUCCEEDED", 0, f"Crawled {PAGES} pages", True),
        "items": pages,
        "item count": PAGES,
        "request counts": (PAGES + 1, PAGES + 1, 0),
        "requests": sorted([*(url for url, _ in pages), site + "/missing.html"]),
        "unhandled": [],
        "head": [],
        "INPUT": {"start": site + "/"},
        "OUTPUT": output,
        "statistics finished": PAGES,
        "last run": run_id,
        "last run items": PAGES,
    }
