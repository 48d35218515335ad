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
