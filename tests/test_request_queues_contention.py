"""Many clients working one request queue at once: every request is processed exactly once.

16 clients, each on its own connection and thread, loop `POST head/lock` then mark each request they got
handled (`PUT` with handledAt), over real HTTP on every engine; then the same across two nodes over one
PostgreSQL. A request handed to two clients, or never handed out, fails the test.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import Server, every_engine, start_server, stop_server
from tests.harness.backends import Backends

pytestmark = pytest.mark.timeout(300)

server = every_engine()

REQUESTS = 500
CLIENTS = 16


def fill(http: httpx.Client) -> str:
    queue_id: str = http.post("/request-queues").json()["data"]["id"]
    for start in range(0, REQUESTS, 25):
        batch = [
            {"url": f"http://ex.com/{i}", "uniqueKey": f"http://ex.com/{i}"} for i in range(start, start + 25)
        ]
        assert http.post(f"/request-queues/{queue_id}/requests/batch", json=batch).status_code == 201
    return queue_id


def work(nodes: list[Server], queue_id: str) -> Counter[str]:
    """Run the clients (spread over the nodes) until the queue is done; how often each request was taken."""
    taken: Counter[str] = Counter()
    guard = threading.Lock()
    errors: list[str] = []

    def client(n: int) -> None:
        node = nodes[n % len(nodes)]
        key = f"client-{n}"
        with httpx.Client(
            base_url=node.api, headers={"authorization": f"Bearer {node.token}"}, timeout=60
        ) as http:
            q = f"/request-queues/{queue_id}"
            while True:
                response = http.post(f"{q}/head/lock", params={"lockSecs": 120, "limit": 5, "clientKey": key})
                if response.status_code != 200:
                    errors.append(response.text)
                    return
                data = response.json()["data"]
                if not data["items"]:
                    if not data["queueHasLockedRequests"]:
                        return
                    continue
                for item in data["items"]:
                    with guard:
                        taken[item["id"]] += 1
                    body = {
                        "uniqueKey": item["uniqueKey"],
                        "url": item["url"],
                        "handledAt": "2026-01-01T00:00:00Z",
                    }
                    done = http.put(f"{q}/requests/{item['id']}", json=body, params={"clientKey": key})
                    if done.status_code != 200:
                        errors.append(done.text)

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    assert errors == []
    return taken


def check(http: httpx.Client, queue_id: str, taken: Counter[str]) -> None:
    assert len(taken) == REQUESTS
    assert [rid for rid, times in taken.items() if times != 1] == []
    data = http.get(f"/request-queues/{queue_id}").json()["data"]
    assert (data["totalRequestCount"], data["handledRequestCount"], data["pendingRequestCount"]) == (
        REQUESTS,
        REQUESTS,
        0,
    )
    assert data["hadMultipleClients"] is True


def test_head_lock_under_contention(server: Server, http: httpx.Client) -> None:
    queue_id = fill(http)
    check(http, queue_id, work([server], queue_id))


@pytest.fixture(scope="module")
def two_nodes(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    where = backends.locations("postgres+files")
    env = {"SATCHEL_DATABASE": where["database"]}
    root = tmp_path_factory.mktemp("rq-nodes")
    # One data dir: its files are the nodes' blob store (a node on a blob folder of its own is refused).
    nodes = [start_server(root / "nodes" / "data", env=env) for _ in range(2)]
    yield nodes
    for node in nodes:
        stop_server(node)


def test_head_lock_across_nodes(two_nodes: list[Server]) -> None:
    with two_nodes[0].client() as http:
        queue_id = fill(http)
        check(http, queue_id, work(two_nodes, queue_id))
