"""/metrics: requests by route template, latencies, bytes, what is stored, refusals and sweeps, and the totals
of every worker process from whichever worker a scrape reaches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from satchel.metrics import FLUSH_SECONDS
from tests.conftest import TOKEN, Server, every_engine, start_server, stop_server
from tests.test_operations import app_with

RECORD = "/v2/key-value-stores/{storeId}/records/{recordKey}"
AUTH = {"authorization": f"Bearer {TOKEN}"}

server = every_engine(in_process=True)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: httpx.Client) -> Samples:
    response = http.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_route_template_not_path(tmp_path: Path) -> None:
    with app_with(tmp_path / "data") as http:
        store = http.post("/v2/key-value-stores", headers=AUTH).json()["data"]["id"]
        for key in ("one", "two", "three"):
            assert http.get(f"/v2/key-value-stores/{store}/records/{key}", headers=AUTH).status_code == 404
        for path in ("/v2/no-such/1", "/v2/no-such/2", "/elsewhere"):
            assert http.get(path).status_code == 404
        page = http.get("/metrics").text
        samples = scrape(http)
    total = "satchel_http_requests_total"
    assert value(samples, total, route=RECORD, method="GET", status="404") == 3
    assert value(samples, total, route="unmatched", method="GET", status="404") == 3
    assert value(samples, total, route="/v2/key-value-stores", method="POST", status="201") == 1
    assert value(samples, "satchel_http_request_duration_seconds_count", route=RECORD) == 3
    # No path, however many were asked for, becomes a label.
    assert store not in page
    assert "no-such" not in page
    assert "elsewhere" not in page


def test_bytes_in_and_out(tmp_path: Path) -> None:
    body = bytes(range(256)) * 4  # 1 KiB
    with app_with(tmp_path / "data") as http:
        store = http.post("/v2/key-value-stores", headers=AUTH).json()["data"]["id"]
        url = f"/v2/key-value-stores/{store}/records/blob"
        before = scrape(http)
        put = http.put(url, content=body, headers={**AUTH, "content-type": "application/octet-stream"})
        got = http.get(url, headers=AUTH)
        after = scrape(http)
    assert put.status_code == 201
    assert got.content == body
    received = value(after, "satchel_http_request_bytes_total", route=RECORD)
    received -= value(before, "satchel_http_request_bytes_total", route=RECORD)
    sent = value(after, "satchel_http_response_bytes_total", route=RECORD)
    sent -= value(before, "satchel_http_response_bytes_total", route=RECORD)
    assert received == 1024
    assert sent == 1024 + len(put.content)


def test_bytes_of_streamed_answers_and_of_the_console(tmp_path: Path) -> None:
    """A body past the inline limit goes out streamed (or as a file the server sends), and the Console answers
    by itself: both are counted as they are sent, with the id on the answer."""
    big = bytes(range(256)) * 1024  # 256 KiB: kept as a blob, not in the database
    with app_with(tmp_path / "data") as http:
        store = http.post("/v2/key-value-stores", headers=AUTH).json()["data"]["id"]
        url = f"/v2/key-value-stores/{store}/records/big"
        assert http.put(url, content=big, headers=AUTH).status_code == 201
        before = scrape(http)
        got = http.get(url, headers=AUTH)
        page = http.get("/console/login")
        after = scrape(http)
    assert got.content == big
    assert page.status_code == 200
    assert got.headers["x-request-id"] != page.headers["x-request-id"]
    sent = value(after, "satchel_http_response_bytes_total", route=RECORD)
    sent -= value(before, "satchel_http_response_bytes_total", route=RECORD)
    assert sent == len(big)
    console = value(after, "satchel_http_response_bytes_total", route="/console")
    console -= value(before, "satchel_http_response_bytes_total", route="/console")
    assert console == len(page.content)


def test_what_is_stored_on_every_engine(server: Server) -> None:
    assert server.app is not None
    with httpx.Client(transport=server.app.transport, base_url=server.base_url, headers=AUTH) as http:
        before = scrape(http)
        store = http.post("/v2/key-value-stores").json()["data"]["id"]
        for key, size in (("a", 10), ("b", 200_000)):  # inline, and in the blob store
            written = http.put(f"/v2/key-value-stores/{store}/records/{key}", content=b"x" * size)
            assert written.status_code == 201, written.text
        dataset = http.post("/v2/datasets").json()["data"]["id"]
        assert http.post(f"/v2/datasets/{dataset}/items", json=[{"n": 1}, {"n": 2}]).status_code == 201
        queue = http.post("/v2/request-queues").json()["data"]["id"]
        request = {"url": "https://example.com", "uniqueKey": "https://example.com"}
        assert http.post(f"/v2/request-queues/{queue}/requests", json=request).status_code == 201
        after = scrape(http)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("satchel_records") == 2
    assert grew("satchel_dataset_items") == 2
    assert grew("satchel_queue_requests") == 1
    assert grew("satchel_storages", kind="key-value-store") == 1
    assert grew("satchel_storages", kind="dataset") == 1
    assert grew("satchel_storages", kind="request-queue") == 1
    assert grew("satchel_stored_bytes", kind="key-value-store") == 200_010
    assert grew("satchel_stored_bytes", kind="dataset") > 0


def test_rate_limit_rejections(tmp_path: Path) -> None:
    limits = {"rate_limit": True, "rate_limit_global_per_minute": 3, "rate_limit_wait_seconds": 0}
    with app_with(tmp_path / "data", **limits) as http:
        statuses = [http.get("/v2/users/me", headers=AUTH).status_code for _ in range(8)]
        samples = scrape(http)
    refused = statuses.count(429)
    assert refused >= 5
    assert value(samples, "satchel_rate_limit_rejections_total", limit="global") == refused
    assert value(samples, "satchel_rate_limit_rejections_total", limit="resource") == 0
    status = {"route": "/v2/users/me", "method": "GET", "status": "429"}
    assert value(samples, "satchel_http_requests_total", **status) == refused


def test_sweeper_runs(tmp_path: Path) -> None:
    settings = {"retention_seconds": 1, "sweep_interval_seconds": 0.1}
    with app_with(tmp_path / "data", **settings) as http:
        http.post("/v2/key-value-stores", headers=AUTH)  # unnamed: it expires a second after its last use
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            samples = scrape(http)
            if value(samples, "satchel_retention_deleted_storages_total") >= 1:
                break
            time.sleep(0.1)
    assert value(samples, "satchel_retention_deleted_storages_total") == 1
    assert value(samples, "satchel_retention_sweeps_total", outcome="ok") >= 2
    assert value(samples, "satchel_retention_sweeps_total", outcome="failed") == 0


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("metrics-workers")
    folder = root / "multiproc"
    srv = start_server(root / "data", args=("--workers", "2"), env={"PROMETHEUS_MULTIPROC_DIR": str(folder)})
    yield srv, folder
    stop_server(srv)


def test_every_worker_counts_into_one_total(two_workers: tuple[Server, Path]) -> None:
    """Requests and scrapes each on a new connection, which the kernel hands to either worker: every scrape,
    whichever worker answers it, shows all the requests."""
    srv, folder = two_workers
    labels = {"route": "/v2/users/me", "method": "GET", "status": "200"}

    def counted() -> float:
        with httpx.Client(base_url=srv.base_url) as http:
            return value(scrape(http), "satchel_http_requests_total", **labels)

    settled = 2 * FLUSH_SECONDS + 0.5  # each worker writes its tallies out within a second
    time.sleep(settled)
    before = counted()  # the server's start was polled on this route
    for _ in range(40):
        assert httpx.get(f"{srv.api}/users/me", headers=AUTH).status_code == 200
    time.sleep(settled)
    assert {counted() for _ in range(12)} == {before + 40}
    # Both workers keep their own counters there, which the scrapes summed.
    assert len(list(folder.glob("counter_*.db"))) == 2
