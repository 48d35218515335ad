"""Request queues over HTTP, endpoint by endpoint, in-process on every engine.

What is asserted is what the clients rely on (ids derived from uniqueKeys, upserting PUT, head
order, atomic locks that expire, counts, hadMultipleClients), not what the code happens to do.
"""

from __future__ import annotations

import base64
import gzip
import re
import time
from datetime import datetime
from hashlib import sha256
from typing import Any

import brotli
import httpx
import orjson
import pytest

from satchel.service.queue_requests import request_id
from satchel.storage.rows import NewRequest
from tests.conftest import Server, every_engine
from tests.harness.envelope import assert_error, data_of, unique

server = every_engine(in_process=True)

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def sdk_id(unique_key: str) -> str:
    """The SDK's own function, written out as the contract gives it."""
    return re.sub(r"[+/=]", "", base64.b64encode(sha256(unique_key.encode("utf-8")).digest()).decode())[:15]


def req(n: int | str, **extra: Any) -> dict[str, Any]:
    url = f"http://ex.com/{n}"
    return {"uniqueKey": url, "url": url, "method": "GET", **extra}


@pytest.fixture
def q(http: httpx.Client) -> str:
    """A fresh unnamed queue's path."""
    return f"/request-queues/{data_of(http.post('/request-queues'), 201)['id']}"


def add(http: httpx.Client, q: str, *requests: dict[str, Any], **params: Any) -> Any:
    return data_of(http.post(f"{q}/requests/batch", json=list(requests), params=params), 201)


def head_ids(http: httpx.Client, q: str, **params: Any) -> list[str]:
    return [item["id"] for item in data_of(http.get(f"{q}/head", params=params))["items"]]


def lock(http: httpx.Client, q: str, **params: Any) -> Any:
    return data_of(http.post(f"{q}/head/lock", params={"lockSecs": 60, **params}))


def counts(http: httpx.Client, q: str) -> tuple[int, int, int]:
    data = data_of(http.get(q))
    return data["totalRequestCount"], data["handledRequestCount"], data["pendingRequestCount"]


# --- ids


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("http://127.0.0.1:47652/index.html", "lzowGOVyE2zvDrw"),
        ("http://127.0.0.1:47652/a.html", "Phv7B1UrbsOq5HH"),
        ("http://ex.com/1", "Sbz3Gqp9BYNtI6D"),
    ],
)
def test_request_id_vectors(key: str, expected: str) -> None:
    assert request_id(key) == expected == sdk_id(key)


def test_ids_are_derived_from_unique_keys(http: httpx.Client, q: str) -> None:
    key = "POST|60d83e70|015abd7f|http://x.com/p"
    found = data_of(http.post(f"{q}/requests", json={"uniqueKey": key, "url": "http://x.com/p"}), 201)
    assert found == {"requestId": sdk_id(key), "wasAlreadyPresent": False, "wasAlreadyHandled": False}
    # No normalisation: a different case is a different request.
    other = data_of(http.post(f"{q}/requests", json=req("A.html")), 201)
    assert other["requestId"] == sdk_id("http://ex.com/A.html") != sdk_id("http://ex.com/a.html")
    # Without a uniqueKey, the url is the key.
    bare = data_of(http.post(f"{q}/requests", json={"url": "http://ex.com/bare"}), 201)
    assert bare["requestId"] == sdk_id("http://ex.com/bare")
    stored = data_of(http.get(f"{q}/requests/{bare['requestId']}"))
    assert stored["uniqueKey"] == "http://ex.com/bare"


# --- the collection and a queue


def test_queue_object(http: httpx.Client, server: Server) -> None:
    name = unique("rq")
    created = http.post("/request-queues", params={"name": name})
    data = data_of(created, 201)
    assert created.headers["location"] == f"{server.base_url}/v2/request-queues/{data['id']}"
    assert data["name"] == name
    assert data["username"] == "admin"
    assert data["userId"]
    assert data["consoleUrl"] == f"{server.base_url}/console/request-queues/{data['id']}"
    for field in ("createdAt", "modifiedAt", "accessedAt"):
        assert ISO_Z.match(data[field]), data[field]
    assert (data["totalRequestCount"], data["handledRequestCount"], data["pendingRequestCount"]) == (0, 0, 0)
    assert data["hadMultipleClients"] is False
    assert {"actId", "actRunId", "generalAccess", "stats", "title"} <= set(data)
    again = http.post("/request-queues", params={"name": name})
    assert data_of(again)["id"] == data["id"]
    # By id, by username~name and by ~name.
    for ref in (data["id"], f"admin~{name}", f"~{name}"):
        assert data_of(http.get(f"/request-queues/{ref}"))["id"] == data["id"]
    renamed = data_of(http.put(f"/request-queues/{data['id']}", json={"name": name + "-b", "title": "T"}))
    assert (renamed["name"], renamed["title"]) == (name + "-b", "T")
    assert http.delete(f"/request-queues/{data['id']}").status_code == 204
    assert_error(http.get(f"/request-queues/{data['id']}"), 404, "record-not-found")
    assert_error(http.delete(f"/request-queues/{data['id']}"), 404)


def test_queue_kinds_are_apart(http: httpx.Client) -> None:
    kvs = data_of(http.post("/key-value-stores"), 201)
    assert_error(http.get(f"/request-queues/{kvs['id']}"), 404)
    name = unique("rq")
    http.post("/key-value-stores", params={"name": name})
    assert data_of(http.post("/request-queues", params={"name": name}), 201)["name"] == name


def test_list_queues(http: httpx.Client) -> None:
    named = data_of(http.post("/request-queues", params={"name": unique("rq")}), 201)
    unnamed = data_of(http.post("/request-queues"), 201)
    add(http, f"/request-queues/{named['id']}", req(1), req(2, handledAt="2024-01-01T00:00:00Z"))
    page = data_of(http.get("/request-queues", params={"limit": 1000}))
    assert {"total", "offset", "limit", "desc", "count", "items"} <= set(page)
    ids = {item["id"]: item for item in page["items"]}
    assert named["id"] in ids
    assert unnamed["id"] not in ids
    item = ids[named["id"]]
    assert (item["totalRequestCount"], item["handledRequestCount"], item["pendingRequestCount"]) == (2, 1, 1)
    everything = data_of(http.get("/request-queues", params={"unnamed": "true", "desc": "1"}))
    listed = {item["id"]: item for item in everything["items"]}
    # apify-client 3.4 needs a string name and username on list items.
    assert listed[unnamed["id"]]["name"] == ""
    assert listed[unnamed["id"]]["username"] == "admin"
    assert data_of(http.get("/request-queues", params={"limit": 5000}))["limit"] == 1000
    assert data_of(http.get("/request-queues", params={"ownership": "ownedByMe"}))["total"] >= 1


# --- adding


def test_add_and_dedup(http: httpx.Client, q: str) -> None:
    first = data_of(
        http.post(f"{q}/requests", json=req(1, userData={"label": "A"}), params={"clientKey": "c"}), 201
    )
    assert first == {
        "requestId": sdk_id("http://ex.com/1"),
        "wasAlreadyPresent": False,
        "wasAlreadyHandled": False,
    }
    again = data_of(http.post(f"{q}/requests", json=req(1, userData={"label": "B"})), 201)
    assert again == {**first, "wasAlreadyPresent": True}
    # An add never changes the stored request.
    assert data_of(http.get(f"{q}/requests/{first['requestId']}"))["userData"] == {"label": "A"}
    # Added handled: new, and counted as handled.
    done = data_of(http.post(f"{q}/requests", json=req(2, handledAt="2024-01-01T00:00:00Z")), 201)
    assert (done["wasAlreadyPresent"], done["wasAlreadyHandled"]) == (False, False)
    repeat = data_of(http.post(f"{q}/requests", json=req(2)), 201)
    assert (repeat["wasAlreadyPresent"], repeat["wasAlreadyHandled"]) == (True, True)
    assert counts(http, q) == (2, 1, 1)


def test_batch_add(http: httpx.Client, q: str) -> None:
    result = add(http, q, req(1), req(2), req(1), clientKey="c", forefront="false")
    assert result["unprocessedRequests"] == []
    processed = result["processedRequests"]
    assert [p["uniqueKey"] for p in processed] == ["http://ex.com/1", "http://ex.com/2", "http://ex.com/1"]
    assert [p["wasAlreadyPresent"] for p in processed] == [False, False, True]
    assert all(p["requestId"] == sdk_id(p["uniqueKey"]) for p in processed)
    empty = add(http, q)
    assert empty == {"processedRequests": [], "unprocessedRequests": []}
    assert counts(http, q) == (2, 0, 2)


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_batch_add_compressed_and_large(http: httpx.Client, q: str, encoding: str) -> None:
    # 25 requests of ~360 KiB each: ~9 MiB decoded, as the SDK's largest batches.
    filler = "x" * (360 * 1024)
    batch = [req(f"big-{encoding}-{i}", userData={"filler": filler, "i": i}) for i in range(25)]
    raw = orjson.dumps(batch)
    assert 8.5 * 2**20 < len(raw) < 9 * 2**20
    body = gzip.compress(raw) if encoding == "gzip" else brotli.compress(raw)
    headers = {"content-type": "application/json", "content-encoding": encoding}
    result = data_of(http.post(f"{q}/requests/batch", content=body, headers=headers), 201)
    assert len(result["processedRequests"]) == 25
    stored = data_of(http.get(f"{q}/requests/{sdk_id('http://ex.com/big-' + encoding + '-7')}"))
    assert stored["userData"] == {"filler": filler, "i": 7}


def test_extras_are_kept(http: httpx.Client, q: str) -> None:
    sent = req(1, userData={"__crawlee": {"state": 4}}, headers={"a": "b"}, payload='{"a":1}', custom=[1, 2])
    rid = data_of(http.post(f"{q}/requests", json=sent), 201)["requestId"]
    # What was not sent is filled in as the reference shows it (a GET, not retried, nothing more).
    defaults = {"retryCount": 0, "noRetry": False}
    assert data_of(http.get(f"{q}/requests/{rid}")) == {**sent, **defaults, "id": rid}


def test_a_request_stored_without_the_defaults_is_shown_with_them(server: Server, http: httpx.Client) -> None:
    """Stored as Satchel kept it before filling the defaults in on the way in: read, listed and at the head
    with them, as the SDK needs to take it."""
    assert server.app is not None
    storage = server.app.app.services.storage
    queue_id = data_of(http.post("/request-queues"), 201)["id"]
    queue = server.app.run(storage.stores.by_id(queue_id))
    assert queue is not None
    url = "http://ex.com/old"
    rid = request_id(url)
    old = NewRequest(rid, orjson.dumps({"id": rid, "uniqueKey": url, "url": url}), None)
    server.app.run(storage.queues.add(queue.pk, [old], forefront=False, client_key="", now=1))
    defaults = {"method": "GET", "retryCount": 0, "headers": {}, "userData": {}, "noRetry": False}
    assert data_of(http.get(f"/request-queues/{queue_id}/requests/{rid}")) == {
        "id": rid,
        "uniqueKey": url,
        "url": url,
        **defaults,
    }
    assert data_of(http.get(f"/request-queues/{queue_id}/requests"))["items"][0]["retryCount"] == 0
    head = data_of(http.get(f"/request-queues/{queue_id}/head"))["items"]
    assert head == [{"id": rid, "uniqueKey": url, "url": url, "method": "GET", "retryCount": 0}]


# --- update (upsert), get, delete


def test_put_upserts_and_reports_the_state_before(http: httpx.Client, q: str) -> None:
    rid = sdk_id("http://ex.com/new")
    handled = {**req("new"), "id": rid, "handledAt": "2026-12-02T02:30:38.253996Z", "retryCount": 0}
    first = data_of(http.put(f"{q}/requests/{rid}", json=handled, params={"clientKey": "c"}))
    assert first == {"requestId": rid, "wasAlreadyPresent": False, "wasAlreadyHandled": False}
    assert counts(http, q) == (1, 1, 0)
    assert data_of(http.get(f"{q}/requests/{rid}"))["handledAt"] == "2026-12-02T02:30:38.253996Z"
    # Reclaim: pending again, and the answer is the state before.
    reclaimed = data_of(http.put(f"{q}/requests/{rid}", json={**req("new"), "id": rid}))
    assert reclaimed == {"requestId": rid, "wasAlreadyPresent": True, "wasAlreadyHandled": True}
    assert counts(http, q) == (1, 0, 1)
    assert head_ids(http, q) == [rid]
    again = data_of(
        http.put(f"{q}/requests/{rid}", json={**req("new"), "handledAt": "2024-01-01T00:00:00+02:00"})
    )
    assert again["wasAlreadyHandled"] is False
    stored = data_of(http.get(f"{q}/requests/{rid}"))
    assert stored["handledAt"] == "2023-12-31T22:00:00.000Z"  # written in UTC with Z
    datetime.fromisoformat(stored["handledAt"])
    assert head_ids(http, q) == []


def test_reclaim_requeues_end_or_front_and_drops_the_lock(http: httpx.Client, q: str) -> None:
    add(http, q, req(1), req(2), req(3))
    ids = [sdk_id(f"http://ex.com/{n}") for n in (1, 2, 3)]
    taken = lock(http, q, limit=1, clientKey="a")["items"]
    assert [i["id"] for i in taken] == [ids[0]]
    http.put(f"{q}/requests/{ids[0]}", json=req(1), params={"clientKey": "a"})
    assert head_ids(http, q) == [ids[1], ids[2], ids[0]]  # pending again, at the end, unlocked
    http.put(f"{q}/requests/{ids[0]}", json=req(1), params={"forefront": "true"})
    assert head_ids(http, q) == [ids[0], ids[1], ids[2]]


def test_get_and_delete_request(http: httpx.Client, q: str) -> None:
    rid = add(http, q, req(1), req(2, handledAt="2024-01-01T00:00:00Z"))["processedRequests"][1]["requestId"]
    assert_error(http.get(f"{q}/requests/nope"), 404, "record-not-found")
    assert http.delete(f"{q}/requests/{rid}", params={"clientKey": "c"}).status_code == 204
    assert counts(http, q) == (1, 0, 1)
    assert_error(http.delete(f"{q}/requests/{rid}"), 404)


def test_batch_delete(http: httpx.Client, q: str) -> None:
    add(http, q, req(1), req(2), req(3))
    body = [{"id": sdk_id("http://ex.com/1")}, {"uniqueKey": "http://ex.com/2"}, {"id": "missing"}]
    response = http.request("DELETE", f"{q}/requests/batch", json=body, params={"clientKey": "c"})
    result = data_of(response)
    assert result["unprocessedRequests"] == []
    assert [p["id"] for p in result["processedRequests"]] == [
        sdk_id("http://ex.com/1"),
        sdk_id("http://ex.com/2"),
        "missing",
    ]
    assert result["processedRequests"][1]["uniqueKey"] == "http://ex.com/2"
    assert counts(http, q) == (1, 0, 1)


# --- listing


def test_list_requests_with_cursor_and_filters(http: httpx.Client, q: str) -> None:
    add(http, q, *[req(i) for i in range(7)])
    add(http, q, req("h", handledAt="2024-01-01T00:00:00Z"))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "clientKey": "c"}
        if cursor:
            params["cursor"] = cursor
        page = data_of(http.get(f"{q}/requests", params=params))
        seen += [item["id"] for item in page["items"]]
        assert page["limit"] == 3
        assert page["count"] == len(page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == sorted(seen)
    assert len(seen) == 8
    legacy = data_of(http.get(f"{q}/requests", params={"exclusiveStartId": seen[3]}))
    assert [item["id"] for item in legacy["items"]] == seen[4:]
    assert data_of(http.get(f"{q}/requests", params={"limit": 99999}))["limit"] == 10000
    assert len(data_of(http.get(f"{q}/requests", params={"filter": "pending"}))["items"]) == 7
    taken = lock(http, q, limit=2)["items"]
    locked = data_of(http.get(f"{q}/requests", params={"filter": "locked"}))["items"]
    assert sorted(item["id"] for item in locked) == sorted(item["id"] for item in taken)
    assert all(ISO_Z.match(item["lockExpiresAt"]) for item in locked)
    both = data_of(http.get(f"{q}/requests", params={"filter": "pending,locked"}))["items"]
    assert len(both) == 7


# --- head and locks


def test_head_order(http: httpx.Client, q: str) -> None:
    add(http, q, req(1), req(2))
    add(http, q, req("f1"), forefront="true")
    http.post(f"{q}/requests", json=req("f2"), params={"forefront": "true"})
    add(http, q, req(3))
    expected = [sdk_id(f"http://ex.com/{n}") for n in ("f2", "f1", 1, 2, 3)]
    head = data_of(http.get(f"{q}/head", params={"clientKey": "c"}))
    assert [item["id"] for item in head["items"]] == expected
    assert head["limit"] == 100
    assert ISO_Z.match(head["queueModifiedAt"])
    assert set(head["items"][0]) == {"id", "uniqueKey", "url", "method", "retryCount"}
    assert head_ids(http, q, limit=2) == expected[:2]
    assert data_of(http.get(f"{q}/head", params={"limit": 5000}))["limit"] == 1000
    # Handled requests leave the head at once.
    http.put(f"{q}/requests/{expected[0]}", json={**req("f2"), "handledAt": "2024-01-01T00:00:00Z"})
    assert head_ids(http, q) == expected[1:]


def test_lock_head(http: httpx.Client, q: str) -> None:
    add(http, q, *[req(i) for i in range(25)])
    add(http, q, *[req(i) for i in range(25, 30)])
    first = lock(http, q, limit=100, clientKey="a")
    assert first["limit"] == 25
    assert first["lockSecs"] == 60
    assert first["clientKey"] == "a"
    assert first["queueHasLockedRequests"] is True
    assert len(first["items"]) == 25
    for item in first["items"]:
        expires = datetime.fromisoformat(item["lockExpiresAt"])
        assert expires.tzinfo is not None
        assert ISO_Z.match(item["lockExpiresAt"])
    second = lock(http, q, limit=25, clientKey="b")
    assert len(second["items"]) == 5
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    assert lock(http, q, clientKey="b")["items"] == []
    assert head_ids(http, q) == []  # locked requests are not in the head
    # Handled ones are not locked any more.
    for item in [*first["items"], *second["items"]]:
        body = {"uniqueKey": item["uniqueKey"], "url": item["url"], "handledAt": "2024-01-01T00:00:00Z"}
        http.put(f"{q}/requests/{item['id']}", json=body)
    final = lock(http, q, clientKey="a")
    assert final["items"] == []
    assert final["queueHasLockedRequests"] is False
    assert counts(http, q) == (30, 30, 0)


def test_a_locked_request_read_and_sent_back_does_not_store_its_lock(http: httpx.Client, q: str) -> None:
    add(http, q, req(1))
    rid = lock(http, q, limit=1, clientKey="a")["items"][0]["id"]
    read = data_of(http.get(f"{q}/requests/{rid}"))
    assert read["lockByClient"] == "a"
    forged = {**read, "lockByClient": "z", "lockExpiresAt": "2099-01-01T00:00:00.000Z"}
    http.put(f"{q}/requests/{rid}", json=forged, params={"clientKey": "a"})  # released: pending again
    for shown in (data_of(http.get(f"{q}/requests/{rid}")), data_of(http.get(f"{q}/requests"))["items"][0]):
        assert "lockByClient" not in shown, shown
        assert "lockExpiresAt" not in shown, shown
    assert head_ids(http, q) == [rid]


def test_an_answer_holds_so_many_bytes_of_requests_and_the_list_goes_on(http: httpx.Client, q: str) -> None:
    """Requests as large as a payload may be: an answer stops before the one at which its requests reach
    PAGE_BYTES (16 MiB), and a list cut short that way still gives the cursor to the rest."""
    big = "x" * (7 * 1024 * 1024)  # four of them: the fourth would begin past 16 MiB
    for n in range(4):
        assert http.post(f"{q}/requests", json=req(n, userData={"big": big})).status_code == 201
    ids = [sdk_id(f"http://ex.com/{n}") for n in range(4)]
    first = data_of(http.get(f"{q}/requests", params={"limit": 10}))
    assert sorted(item["id"] for item in first["items"]) == sorted(ids)[:3]
    assert first["nextCursor"]
    rest = data_of(http.get(f"{q}/requests", params={"limit": 10, "cursor": first["nextCursor"]}))
    assert [item["id"] for item in rest["items"]] == sorted(ids)[3:]
    assert rest.get("nextCursor") is None
    assert head_ids(http, q, limit=10) == ids[:3]
    assert [item["id"] for item in lock(http, q, limit=25, clientKey="a")["items"]] == ids[:3]
    assert head_ids(http, q, limit=10) == ids[3:]  # only what was returned was locked


def test_prolong_delete_lock_and_unlock(http: httpx.Client, q: str) -> None:
    add(http, q, req(1), req(2), req(3), req(4))
    ids = [sdk_id(f"http://ex.com/{n}") for n in (1, 2, 3, 4)]
    taken = lock(http, q, limit=2, clientKey="a")["items"]
    assert [i["id"] for i in taken] == ids[:2]
    path = f"{q}/requests/{ids[0]}/lock"
    assert_error(http.put(path, params={"lockSecs": 120, "clientKey": "b"}), 409)  # not b's lock
    prolonged = data_of(http.put(path, params={"lockSecs": 120, "clientKey": "a", "forefront": "false"}))
    assert datetime.fromisoformat(prolonged["lockExpiresAt"]) > datetime.fromisoformat(
        taken[0]["lockExpiresAt"]
    )
    assert_error(http.delete(path, params={"clientKey": "b"}), 409)
    assert http.delete(path, params={"clientKey": "a", "forefront": "true"}).status_code == 204
    assert head_ids(http, q) == [ids[0], ids[2], ids[3]]
    assert_error(http.delete(path, params={"clientKey": "a"}), 409, "request-not-locked")
    assert_error(http.put(f"{q}/requests/nope/lock", params={"lockSecs": 5, "clientKey": "a"}), 404)
    lock(http, q, limit=1, clientKey="b")
    unlocked = data_of(http.post(f"{q}/requests/unlock", params={"clientKey": "a"}))
    assert unlocked == {"unlockedCount": 1}
    assert data_of(http.post(f"{q}/requests/unlock", params={"clientKey": "a"})) == {"unlockedCount": 0}
    # b still holds ids[0]; ids[1] went back to the end.
    assert head_ids(http, q) == [ids[2], ids[3], ids[1]]


def test_locks_expire(http: httpx.Client, q: str) -> None:
    add(http, q, req(1), req(2))
    ids = [sdk_id(f"http://ex.com/{n}") for n in (1, 2)]
    taken = lock(http, q, limit=1, lockSecs=1, clientKey="a")
    assert [i["id"] for i in taken["items"]] == ids[:1]
    add(http, q, req(3))
    assert head_ids(http, q) == [ids[1], sdk_id("http://ex.com/3")]
    time.sleep(1.3)
    # Expired: no lock, back in the queue at the place of its expiry (after what came before it).
    assert head_ids(http, q) == [ids[1], sdk_id("http://ex.com/3"), ids[0]]
    assert_error(http.put(f"{q}/requests/{ids[0]}/lock", params={"lockSecs": 5, "clientKey": "a"}), 409)
    again = lock(http, q, limit=3, lockSecs=1.5, clientKey="b")
    assert [i["id"] for i in again["items"]] == [ids[1], sdk_id("http://ex.com/3"), ids[0]]
    assert again["lockSecs"] == 1.5
    assert data_of(http.get(f"{q}/requests", params={"filter": "locked"}))["items"]
    time.sleep(1.7)
    assert data_of(http.get(f"{q}/requests", params={"filter": "locked"}))["items"] == []
    assert lock(http, q, clientKey="c")["queueHasLockedRequests"] is True


# --- clients and clocks


def test_had_multiple_clients(http: httpx.Client, q: str) -> None:
    def multiple() -> bool:
        return data_of(http.get(q))["hadMultipleClients"]  # type: ignore[no-any-return]

    add(http, q, req(1), clientKey="a")
    http.get(f"{q}/head", params={"clientKey": "a"})
    http.get(f"{q}/requests", params={"clientKey": "a"})
    http.get(f"{q}/requests/{sdk_id('http://ex.com/1')}")  # no key, but a GET of one request counts not
    assert multiple() is False
    assert data_of(http.get(f"{q}/head", params={"clientKey": "a"}))["hadMultipleClients"] is False
    http.get(f"{q}/head", params={"clientKey": "b"})
    assert multiple() is True


def test_keyless_calls_are_new_clients(http: httpx.Client, q: str) -> None:
    add(http, q, req(1))
    assert data_of(http.get(q))["hadMultipleClients"] is False
    assert data_of(http.get(f"{q}/head"))["hadMultipleClients"] is True


def test_queue_modified_at_moves(http: httpx.Client, q: str) -> None:
    before = data_of(http.get(f"{q}/head"))["queueModifiedAt"]
    time.sleep(0.01)
    add(http, q, req(1))
    after = data_of(http.get(f"{q}/head"))["queueModifiedAt"]
    assert after > before
    time.sleep(0.01)
    locked = lock(http, q)
    assert locked["queueModifiedAt"] > after
    assert data_of(http.get(q))["modifiedAt"] >= locked["queueModifiedAt"]


# --- bad input


def test_no_body_endpoints_take_no_content_type(server: Server, q: str) -> None:
    status, _, _ = server.raw_request("POST", "/v2/request-queues")
    assert status == 201
    status, _, body = server.raw_request("POST", f"/v2{q}/head/lock?lockSecs=10")
    assert status == 200, body


@pytest.mark.parametrize(
    ("method", "suffix", "params", "body"),
    [
        ("POST", "/requests", {}, b'{"uniqueKey": "x"}'),
        ("POST", "/requests", {}, b'{"url": 5}'),
        ("POST", "/requests", {}, b'{"url": "example.com/page"}'),
        ("POST", "/requests/batch", {}, b'[{"url": "http://a"}, {"url": "page.html"}]'),
        ("POST", "/requests", {}, b"[1]"),
        ("POST", "/requests", {}, b"{bad json"),
        ("POST", "/requests", {}, b'{"url": "http://a", "id": "wrong"}'),
        ("POST", "/requests", {}, b'{"url": "http://a", "retryCount": "1"}'),
        ("POST", "/requests", {}, b'{"url": "http://a", "handledAt": "yesterday"}'),
        ("POST", "/requests", {"clientKey": "k" * 33}, b'{"url": "http://a"}'),
        ("POST", "/requests", {"forefront": "maybe"}, b'{"url": "http://a"}'),
        ("POST", "/requests/batch", {}, b'{"url": "http://a"}'),
        ("POST", "/requests/batch", {}, orjson.dumps([req(i) for i in range(26)])),
        ("POST", "/requests/batch", {}, b'[{"url": "http://a"}, 7]'),
        ("DELETE", "/requests/batch", {}, b"[{}]"),
        ("DELETE", "/requests/batch", {}, b'{"id": "x"}'),
        ("DELETE", "/requests/batch", {}, b'[{"uniqueKey": "http://a", "id": "wrong"}]'),
        ("PUT", "/requests/Sbz3Gqp9BYNtI6D", {}, b'{"url": "http://ex.com/2"}'),
        ("PUT", "/requests/Sbz3Gqp9BYNtI6D", {}, b"null"),
        ("GET", "/requests", {"filter": "done"}, b""),
        ("GET", "/requests", {"cursor": "not-a-cursor"}, b""),
        ("GET", "/requests", {"cursor": "eyJ9", "exclusiveStartId": "x"}, b""),
        ("GET", "/requests", {"limit": "-1"}, b""),
        ("GET", "/head", {"limit": "lots"}, b""),
        ("POST", "/head/lock", {}, b""),
        ("POST", "/head/lock", {"lockSecs": "0"}, b""),
        ("POST", "/head/lock", {"lockSecs": "nan"}, b""),
        ("POST", "/head/lock", {"lockSecs": "10", "limit": "x"}, b""),
        ("PUT", "/requests/Sbz3Gqp9BYNtI6D/lock", {}, b""),
        ("PUT", "/requests/Sbz3Gqp9BYNtI6D/lock", {"lockSecs": "-5"}, b""),
        ("POST", "/requests/unlock", {"clientKey": "k" * 40}, b""),
    ],
)
def test_bad_input(
    http: httpx.Client, q: str, method: str, suffix: str, params: dict[str, str], body: bytes
) -> None:
    headers = {"content-type": "application/json"} if body else {}
    response = http.request(method, q + suffix, params=params, content=body, headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert_error(response, response.status_code)


def test_bad_queue_requests(http: httpx.Client, server: Server) -> None:
    assert_error(http.get("/request-queues", params={"ownership": "theirs"}), 400)
    assert_error(http.get("/request-queues", params={"limit": "x"}), 400)
    assert_error(http.post("/request-queues", params={"name": "bad name!"}), 400)
    assert_error(http.put("/request-queues/nope", json={"name": "x"}), 404)
    named = data_of(http.post("/request-queues", params={"name": unique("rq")}), 201)
    assert_error(http.put(f"/request-queues/{named['id']}", json={"generalAccess": "EVERYONE"}), 400)
    assert_error(http.get("/request-queues/nope/head"), 404, "record-not-found")
    assert_error(http.post("/request-queues/nope/requests", json=req(1)), 404)
    with server.anonymous() as anonymous:
        assert_error(anonymous.post(f"/request-queues/{named['id']}/requests", json=req(1)), 401)
        assert_error(anonymous.get(f"/request-queues/{named['id']}/head"), 404)


def test_too_large_batch(http: httpx.Client, q: str) -> None:
    body = orjson.dumps([req(1, userData={"x": "y" * (11 * 2**20)})])
    assert_error(
        http.post(f"{q}/requests/batch", content=body, headers={"content-type": "application/json"}), 413
    )
