"""Bounds on what callers write, and on what one answer makes the server do.

Every free-text field a caller writes has a bound, and a value past it is a clear 400 with the envelope
(never stored, never echoed back whole). A store list is paged, its items carry only bounded fields, and a
large page is built off the event loop, so one caller's huge list does not stall everyone else's requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from satchel.api import wire
from tests.conftest import Server, every_engine

server = every_engine(in_process=True)

MAX_TITLE = 256
MAX_SCHEMA = 64 * 1024
MAX_MESSAGE = 300  # an error message quotes a refused value only in part


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def _refused(response: httpx.Response, status: int = 400, type: str = "invalid-value") -> str:
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    assert set(error) == {"type", "message"}
    assert error["type"] == type
    assert len(error["message"]) < MAX_MESSAGE, error["message"][:500]
    return str(error["message"])


def test_a_title_is_one_bounded_line(http: httpx.Client) -> None:
    sid = http.post("/key-value-stores").json()["data"]["id"]
    for title in ("t" * MAX_TITLE, "é" * MAX_TITLE, "🎒" * MAX_TITLE, "Crawl results · 2024", None):
        response = http.put(f"/key-value-stores/{sid}", json={"title": title})
        assert response.status_code == 200, response.text[:300]
        assert response.json()["data"]["title"] == title
    too_long = ("t" * (MAX_TITLE + 1), "🎒" * (MAX_TITLE + 1), "x" * 500_000)
    for title in (*too_long, "a\x00b", "two\nlines", "tab\there", "del\x7f", "c1\x85"):
        message = _refused(http.put(f"/key-value-stores/{sid}", json={"title": title}))
        assert "title" in message
    for wrong in (5, ["x"], {"a": 1}, True):
        _refused(http.put(f"/key-value-stores/{sid}", json={"title": wrong}))
    assert http.get(f"/key-value-stores/{sid}").json()["data"]["title"] is None


def test_a_schema_is_bounded_in_size_and_depth(http: httpx.Client) -> None:
    # {"d":"xxx..."} is 8 bytes of JSON around the string.
    at_the_bound = {"d": "x" * (MAX_SCHEMA - 8)}
    assert len(orjson.dumps(at_the_bound)) == MAX_SCHEMA
    created = http.post(
        "/key-value-stores", params={"name": "schema-at-bound"}, json={"schema": at_the_bound}
    )
    assert created.status_code == 201, created.text[:300]
    assert created.json()["data"]["schema"] == at_the_bound
    over = {"d": "x" * (MAX_SCHEMA - 7)}
    message = _refused(http.post("/key-value-stores", params={"name": "schema-over"}, json={"schema": over}))
    assert str(MAX_SCHEMA) in message
    assert http.get("/key-value-stores/~schema-over").status_code == 404
    deep: Any = {}
    for _ in range(100):
        deep = {"a": deep}
    _refused(http.post("/key-value-stores", params={"name": "schema-deep"}, json={"schema": deep}))
    _refused(http.post("/key-value-stores", json={"schema": ["not", "an", "object"]}))


def test_names_and_usernames_are_bounded_and_never_echoed_whole(http: httpx.Client) -> None:
    _refused(http.post("/key-value-stores", params={"name": "n" * 10_000}))
    _refused(http.post("/key-value-stores", params={"name": "bad name " * 1000}))
    sid = http.post("/key-value-stores", params={"name": "bounded-shares"}).json()["data"]["id"]
    _refused(http.put(f"/key-value-stores/{sid}/shares/{'u' * 65}", json={"access": "READ"}))
    _refused(http.put(f"/key-value-stores/{sid}/shares/{'u' * 5000}", json={"access": "READ"}))
    _refused(http.delete(f"/key-value-stores/{sid}/shares/{'u' * 5000}"))
    # At the bound, a name that could be a user's is looked for (and here not found).
    _refused(
        http.put(f"/key-value-stores/{sid}/shares/{'u' * 64}", json={"access": "READ"}), 404, "user-not-found"
    )


def test_a_store_list_item_carries_no_schema(http: httpx.Client) -> None:
    schema = {"description": "x" * 60_000, "collections": {"shots": {"keyPrefix": "shot-"}}}
    made = []
    for i in range(12):
        response = http.post("/key-value-stores", params={"name": f"listed-{i}"}, json={"schema": schema})
        made.append(response.json()["data"]["id"])
    body = http.get("/key-value-stores", params={"limit": 1000}).content
    items = orjson.loads(body)["data"]["items"]
    listed = {item["id"]: item for item in items}
    assert set(made) <= set(listed)
    assert all("schema" not in item for item in items)
    # A full title and every other field: an item stays small whatever the stores hold.
    http.put(f"/key-value-stores/{made[0]}", json={"title": "🎒" * MAX_TITLE})
    items = http.get("/key-value-stores", params={"limit": 1000}).json()["data"]["items"]
    assert max(len(orjson.dumps(item)) for item in items) < 3 * 1024
    # The store's own object still carries its schema.
    assert http.get(f"/key-value-stores/{made[0]}").json()["data"]["schema"] == schema


def _threads_of(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Record the thread each call of wire.<name> runs on."""
    seen: list[str] = []
    original: Callable[..., Any] = getattr(wire, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(wire, name, spy)
    return seen


def test_large_pages_are_built_off_the_event_loop(
    server: Server, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = http.get("/key-value-stores", params={"unnamed": 1, "limit": 1000}).json()["data"]["total"]
    for _ in range(max(0, wire.OFF_LOOP_ITEMS + 5 - stores)):
        http.post("/key-value-stores")
    sid = http.post("/key-value-stores", params={"name": "many-keys"}).json()["data"]["id"]
    for i in range(wire.OFF_LOOP_ITEMS + 5):
        http.put(f"/key-value-stores/{sid}/records/k{i:04d}", content=b"x")
    store_threads = _threads_of(monkeypatch, "store")
    url_threads = _threads_of(monkeypatch, "record_url")
    page = http.get("/key-value-stores", params={"unnamed": 1, "limit": 1000}).json()["data"]
    assert page["count"] >= wire.OFF_LOOP_ITEMS
    keys = http.get(f"/key-value-stores/{sid}/keys").json()["data"]
    assert keys["count"] == wire.OFF_LOOP_ITEMS + 5
    # The app's loop runs on the thread named satchel-app (tests/harness/inprocess.py).
    assert len(store_threads) == page["count"]
    assert "satchel-app" not in store_threads
    assert len(url_threads) == keys["count"]
    assert "satchel-app" not in url_threads
