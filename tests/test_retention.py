"""Retention on a real server with a short period: unnamed stores expire with their records and files."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, start_server, stop_server

BIG = b"x" * (300 * 1024)  # past the inline limit, so it lives as a blob file


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("retention")
    env = {
        "SATCHEL_RETENTION_SECONDS": "2",
        "SATCHEL_SWEEP_INTERVAL_SECONDS": "0.3",
        "SATCHEL_BLOB_GRACE_SECONDS": "0",
    }
    srv = start_server(root / "data", env=env)
    yield srv
    stop_server(srv)


def blob_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs").rglob("*") if p.is_file() and p.parent.parent.name == "blobs"]


def wait_until(check: object, seconds: float = 8.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_unnamed_store_expires_with_its_records_and_files(short_lived: Server) -> None:
    with short_lived.client() as http:
        unnamed = http.post("/key-value-stores").json()["data"]["id"]
        named = http.post("/key-value-stores?name=keeper").json()["data"]["id"]
        for store_id in (unnamed, named):
            assert http.put(f"/key-value-stores/{store_id}/records/big", content=BIG).status_code == 201
        assert len(blob_files(short_lived.data_dir)) == 2

        assert wait_until(lambda: http.get(f"/key-value-stores/{unnamed}").status_code == 404)
        assert http.get(f"/key-value-stores/{unnamed}/records/big").status_code == 404
        assert wait_until(lambda: len(blob_files(short_lived.data_dir)) == 1)
        # The named store outlives several retention periods.
        time.sleep(2.5)
        assert http.get(f"/key-value-stores/{named}/records/big").content == BIG


def test_use_keeps_an_unnamed_store_alive(short_lived: Server) -> None:
    with short_lived.client() as http:
        store_id = http.post("/key-value-stores").json()["data"]["id"]
        http.put(f"/key-value-stores/{store_id}/records/k", content=b"v")
        for _ in range(8):  # 4 s of reads, twice the retention period
            time.sleep(0.5)
            assert http.get(f"/key-value-stores/{store_id}/records/k").status_code == 200


def test_renaming_moves_a_store_between_kept_and_expiring(short_lived: Server) -> None:
    with short_lived.client() as http:
        store_id = http.post("/key-value-stores").json()["data"]["id"]
        assert http.put(f"/key-value-stores/{store_id}", json={"name": "now-named"}).status_code == 200
        time.sleep(3)
        assert http.get(f"/key-value-stores/{store_id}").status_code == 200
        assert http.put(f"/key-value-stores/{store_id}", json={"name": None}).json()["data"]["name"] is None
        assert wait_until(lambda: http.get(f"/key-value-stores/{store_id}").status_code == 404)


def test_unnamed_datasets_and_queues_expire_with_their_items_and_requests(short_lived: Server) -> None:
    request = {"uniqueKey": "http://x.test/1", "url": "http://x.test/1"}
    with short_lived.client() as http:
        made = {}
        for name in (None, "kept"):
            params = {"name": name} if name else {}
            dataset = http.post("/datasets", params=params, json={}).json()["data"]["id"]
            queue = http.post("/request-queues", params=params).json()["data"]["id"]
            assert http.post(f"/datasets/{dataset}/items", json=[{"a": 1}]).status_code == 201
            assert http.post(f"/request-queues/{queue}/requests", json=request).status_code == 201
            made[name] = (dataset, queue)
        dataset, queue = made[None]

        def listed(collection: str) -> set[str]:
            # A collection's listing is no use of what it lists, where a GET of one would keep it alive.
            found = http.get(f"/{collection}", params={"unnamed": "true"}).json()["data"]["items"]
            return {item["id"] for item in found}

        assert dataset in listed("datasets")
        assert queue in listed("request-queues")
        assert wait_until(lambda: dataset not in listed("datasets") and queue not in listed("request-queues"))
        assert http.get(f"/datasets/{dataset}").status_code == 404
        assert http.get(f"/request-queues/{queue}").status_code == 404
        assert http.get(f"/datasets/{dataset}/items").status_code == 404
        time.sleep(2.5)
        dataset, queue = made["kept"]
        assert http.get(f"/datasets/{dataset}/items").json() == [{"a": 1}]
        assert http.get(f"/request-queues/{queue}").json()["data"]["totalRequestCount"] == 1


def test_reading_keeps_an_unnamed_dataset_and_queue_alive(short_lived: Server) -> None:
    with short_lived.client() as http:
        dataset = http.post("/datasets", json={}).json()["data"]["id"]
        queue = http.post("/request-queues").json()["data"]["id"]
        http.post(f"/datasets/{dataset}/items", json=[{"a": 1}])
        for _ in range(8):  # 4 s of reads, twice the retention period
            time.sleep(0.5)
            assert http.get(f"/datasets/{dataset}/items").status_code == 200
            assert http.get(f"/request-queues/{queue}/head").status_code == 200


def test_a_runs_storages_expire_and_the_run_stays(short_lived: Server) -> None:
    with short_lived.client() as http:
        run = http.post("/acts/~retained/runs", json={"start": 1}).json()["data"]
        assert http.get(f"/actor-runs/{run['id']}/key-value-store/records/INPUT").json() == {"start": 1}
        assert wait_until(lambda: http.get(f"/datasets/{run['defaultDatasetId']}").status_code == 404)
        assert wait_until(lambda: http.get(f"/actor-runs/{run['id']}/key-value-store").status_code == 404)
        assert http.get(f"/actor-runs/{run['id']}").json()["data"]["id"] == run["id"]
