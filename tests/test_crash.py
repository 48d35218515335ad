"""Crash consistency: SIGKILL the server under write load; every acknowledged write survives whole."""

from __future__ import annotations

import gzip
import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server

CYCLES = 3
WRITERS = 4
KEYS_PER_WRITER = 12


@dataclass
class Ledger:
    """What one sequential writer knows: per key, the last acknowledged state and any write in flight."""

    acked: dict[str, str | None] = field(default_factory=dict)  # key -> sha256 of the body, None = deleted
    in_flight: dict[str, str | None] = field(default_factory=dict)
    writes: int = 0


def body_for(rng: random.Random) -> bytes:
    size = rng.choice([10, 1000, 100_000, 300_000, 2_000_000])
    return rng.randbytes(size // 2) + b"a" * (size - size // 2)


def writer(
    server: Server, store_id: str, name: str, ledger: Ledger, stop: threading.Event, seed: int
) -> None:
    rng = random.Random(seed)
    with server.client() as http:
        while not stop.is_set():
            key = f"{name}-{rng.randrange(KEYS_PER_WRITER)}"
            url = f"/key-value-stores/{store_id}/records/{key}"
            try:
                if rng.random() < 0.15:
                    ledger.in_flight[key] = None
                    response = http.delete(url)
                    digest = None
                else:
                    body = body_for(rng)
                    digest = hashlib.sha256(body).hexdigest()
                    ledger.in_flight[key] = digest
                    headers = {"content-type": "application/octet-stream"}
                    if rng.random() < 0.3:
                        body, headers["content-encoding"] = gzip.compress(body, 1), "gzip"
                    response = http.put(url, content=body, headers=headers)
            except httpx.TransportError:
                return  # the server died mid-request: this write stays in flight
            if response.status_code in (201, 204):
                ledger.acked[key] = digest
                ledger.in_flight.pop(key, None)
                ledger.writes += 1


def check(server: Server, store_id: str, ledgers: list[Ledger]) -> int:
    checked = 0
    with server.client() as http:
        for ledger in ledgers:
            for key in set(ledger.acked) | set(ledger.in_flight):
                response = http.get(
                    f"/key-value-stores/{store_id}/records/{key}", headers={"accept-encoding": "identity"}
                )
                found = hashlib.sha256(response.content).hexdigest() if response.status_code == 200 else None
                assert response.status_code in (200, 404), response.text
                allowed = {ledger.acked.get(key, None)}
                if key in ledger.in_flight:
                    allowed.add(ledger.in_flight[key])
                assert found in allowed, f"{key}: found {found}, expected one of {allowed}"
                # What the reader saw is now the acknowledged state (a write in flight may have landed).
                ledger.acked[key] = found
                ledger.in_flight.pop(key, None)
                checked += 1
    return checked


@pytest.mark.parametrize("cycles", [CYCLES])
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, cycles: int) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    with server.client() as http:
        store_id = http.post("/key-value-stores?name=crash").json()["data"]["id"]
    ledgers = [Ledger() for _ in range(WRITERS)]
    rng = random.Random(7)
    for cycle in range(cycles):
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=writer, args=(server, store_id, f"w{i}", ledgers[i], stop, cycle * 100 + i)
            )
            for i in range(WRITERS)
        ]
        for t in threads:
            t.start()
        time.sleep(0.8 + rng.random())
        stop_server(server, kill=True)
        stop.set()
        for t in threads:
            t.join()
        server = start_server(data_dir)
        assert check(server, store_id, ledgers) > 0
    assert sum(ledger.writes for ledger in ledgers) > 20
    # Stats add up after the crashes: storageBytes is the sum of the stored sizes.
    with server.client() as http:
        keys = http.get(f"/key-value-stores/{store_id}/keys").json()["data"]["items"]
        stats = http.get(f"/key-value-stores/{store_id}").json()["data"]["stats"]
        assert stats["storageBytes"] == sum(item["size"] for item in keys)
    stop_server(server)
