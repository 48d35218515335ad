"""Hostile input on the dataset, request-queue and run endpoints, the shared part: the targets the tables
name, the server they are sent to (seeded, so a table can show it changed nothing), and the check after."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from satchel.service.queue_requests import request_id
from tests.harness.hostile import MIB, SQLITE, Engine, Hostile, seeded
from tests.harness.server import Server

PAYLOAD_LIMIT = 10 * MIB  # a push or a batch, decoded (max_items_payload_bytes and the queues' limit)
MAX_DECODED = 64 * MIB  # this server's record limit, decoded: a run's INPUT is a record
SEED_ITEMS = [
    {"url": f"http://seed.example/{i}", "#hidden": i % 3, "tags": ["a", {"b": i}]} for i in range(40)
]
SEED_URLS = [f"http://seed.example/{i}" for i in range(12)]
RID_URL, LOCKED_URL = "http://hostile.example/1", "http://hostile.example/locked"
IV, IR, NF = "invalid-value", "invalid-request", "record-not-found"
TAKEN = "request-locked-by-another-client"
# Targets: {ds} and {q} are the seeds (only read here), {sds} and {sq} the scratch ones. In the scratch queue,
# {locked} is held by the clientKey `holder` and {rid} is pending.
DS, SDS, Q, SQ = "/datasets/{ds}", "/datasets/{sds}", "/request-queues/{q}", "/request-queues/{sq}"
ADD, PUT_RID, LOCK = SQ + "/requests", SQ + "/requests/{rid}", SQ + "/requests/{locked}/lock"
RUN = "/actor-runs/{run}"
ITEMS = DS + "/items?"


def array(n: int, item: bytes = b"{}") -> bytes:
    return b"[" + b",".join([item] * n) + b"]"


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode()  # the standard encoder: it writes integers of any size


def seed_digest(http: httpx.Client, values: dict[str, str]) -> str:
    """What the table must leave as it was: the seeded dataset's items and the seeded queue's requests."""
    dataset = http.get(f"/datasets/{values['ds']}").json()["data"]
    items = http.get(f"/datasets/{values['ds']}/items").text
    queue = http.get(f"/request-queues/{values['q']}").json()["data"]
    listed = http.get(f"/request-queues/{values['q']}/requests", params={"limit": 100}).json()["data"]
    counts = [queue[k] for k in ("name", "totalRequestCount", "handledRequestCount", "pendingRequestCount")]
    return orjson.dumps([dataset["name"], dataset["itemCount"], items, counts, listed["items"]]).decode()


@contextmanager
def storages_hostile(root: Path, engine: Engine = SQLITE) -> Iterator[Hostile]:
    """A server with a dataset, a queue and runs seeded for the tables, and scratch ones they may change."""
    env = {"SATCHEL_MAX_DECODED_BYTES": str(MAX_DECODED)}
    with seeded("storages", root, env, seed_storages, engine) as (server, tokens, values):
        with server.client() as http:
            digest = seed_digest(http, values)
        yield Hostile(server, int(server.base_url.rsplit(":", 1)[1]), values, tokens, digest)


def seed_storages(server: Server, tokens: dict[str, str]) -> dict[str, str]:
    """The seeds; what the tables fill in (their ids)."""
    bob = tokens["bob"]
    with server.client() as http, server.client(bob) as as_bob:

        def made(response: httpx.Response) -> str:
            assert response.status_code in (200, 201), response.text
            return str(response.json()["data"]["id"])

        values = {
            "ds": made(http.post("/datasets", params={"name": "hs-seed"})),
            "sds": made(http.post("/datasets", params={"name": "hs-scratch"})),
            "big": made(http.post("/datasets", params={"name": "hs-big"})),
            "q": made(http.post("/request-queues", params={"name": "hs-seed-q"})),
            "sq": made(http.post("/request-queues", params={"name": "hs-scratch-q"})),
            "kvs": made(http.post("/key-value-stores", params={"name": "hs-kvs"})),
            "run": made(http.post("/acts/~hs-actor/runs", json={"start": SEED_URLS[0]})),
            "done": made(http.post("/acts/~hs-actor/runs")),
            "bob_run": made(as_bob.post("/acts/~bob-actor/runs")),
            "bob_ds": made(as_bob.post("/datasets", params={"name": "bob-ds"})),
            "rid": request_id(RID_URL),
            "locked": request_id(LOCKED_URL),
        }
        made(http.post("/acts/~hs-idle/runs"))  # an Actor with no ABORTED run
        assert http.put(f"/actor-runs/{values['done']}", json={"status": "SUCCEEDED"}).status_code == 200
        assert http.post(f"/datasets/{values['ds']}/items", json=SEED_ITEMS).status_code == 201
        requests = [{"url": url, "userData": {"n": i}} for i, url in enumerate(SEED_URLS)]
        q = f"/request-queues/{values['q']}"
        assert http.post(f"{q}/requests/batch", json=requests).status_code == 201
        handled = {"url": SEED_URLS[0], "handledAt": "2024-01-01T00:00:00Z"}
        assert http.put(f"{q}/requests/{request_id(SEED_URLS[0])}", json=handled).status_code == 200
        sq = f"/request-queues/{values['sq']}"
        assert http.post(f"{sq}/requests", json={"url": LOCKED_URL}).status_code == 201
        locked = http.post(f"{sq}/head/lock", params={"lockSecs": 3600, "limit": 1, "clientKey": "holder"})
        assert [item["id"] for item in locked.json()["data"]["items"]] == [values["locked"]]
        assert http.post(f"{sq}/requests", json={"url": RID_URL}).status_code == 201
    return values


def assert_seeds_unchanged_and_server_healthy(storages: Hostile) -> None:
    values = storages.values
    with storages.server.client() as http:
        assert seed_digest(http, values) == storages.seed_digest
        # A push, a read, an add, a lock and a handled mark, as the clients make them.
        dataset = http.post("/datasets", params={"name": "hs-after"}).json()["data"]
        items = gzip.compress(orjson.dumps([{"n": i, "#h": True} for i in range(5)]))
        pushed = http.post(
            f"/datasets/{dataset['id']}/items", content=items, headers={"content-encoding": "gzip"}
        )
        assert pushed.status_code == 201
        read = http.get(f"/datasets/{dataset['id']}/items", params={"clean": 1, "desc": 1, "limit": 2})
        assert read.json() == [{"n": 4}, {"n": 3}]
        assert read.headers["x-apify-pagination-total"] == "5"
        made = http.post("/request-queues", params={"name": "hs-after-q"}).json()["data"]
        queue = f"/request-queues/{made['id']}"
        added = http.post(f"{queue}/requests/batch", json=[{"url": "http://after.example/"}]).json()["data"]
        rid = added["processedRequests"][0]["requestId"]
        locked = http.post(f"{queue}/head/lock", params={"lockSecs": 60, "clientKey": "after"}).json()["data"]
        assert [item["id"] for item in locked["items"]] == [rid]
        handled = {"url": "http://after.example/", "handledAt": "2026-01-01T00:00:00Z"}
        assert (
            http.put(f"{queue}/requests/{rid}", params={"clientKey": "after"}, json=handled).status_code
            == 200
        )
        counts = http.get(queue).json()["data"]
        assert (counts["totalRequestCount"], counts["handledRequestCount"]) == (1, 1)
        assert http.get(f"/actor-runs/{values['run']}/dataset/items").status_code == 200
