"""The HTTP contract of any request: tokens (header or query), methods and their override, unknown paths.

With plain httpx against the app in-process on every engine. What is asserted here is what the specification
says (the API reference and what the official clients send and expect), not what the code happens to do.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Server, every_engine
from tests.harness.contract import (
    create_named,
    get_store,
    put,
    record_path,
)
from tests.harness.envelope import assert_error, data_of, unique

server = every_engine(in_process=True)


# --- authentication, methods, routing


def test_no_token(server: Server) -> None:
    with server.anonymous() as anonymous:
        assert_error(anonymous.get("/key-value-stores"), 401, "token-not-provided")
        assert_error(
            anonymous.post("/key-value-stores", params={"name": unique("ct")}), 401, "token-not-provided"
        )
        assert_error(anonymous.post("/key-value-stores"), 401, "token-not-provided")


def test_bad_token(server: Server) -> None:
    with server.client(token="apify_api_" + "x" * 36) as wrong:
        assert_error(wrong.get("/key-value-stores"), 401, "invalid-token")
        assert_error(wrong.post("/key-value-stores", params={"name": unique("ct")}), 401, "invalid-token")


def test_bad_token_in_query(server: Server) -> None:
    with server.anonymous() as anonymous:
        response = anonymous.get("/key-value-stores", params={"token": "not-a-real-token"})
        assert_error(response, 401, "invalid-token")


def test_token_in_query(server: Server, store: dict[str, Any]) -> None:
    with server.anonymous() as anonymous:
        page = data_of(anonymous.get("/key-value-stores", params={"token": server.token, "unnamed": 1}))
        assert page["count"] >= 1
        fetched = data_of(anonymous.get(f"/key-value-stores/{store['id']}", params={"token": server.token}))
        assert fetched["id"] == store["id"]


def test_anonymous_writes_are_refused(server: Server, store: dict[str, Any]) -> None:
    with server.anonymous() as anonymous:
        response = anonymous.put(
            f"/key-value-stores/{store['id']}/records/k", content=b"x", headers={"content-type": "text/plain"}
        )
        assert 400 <= response.status_code < 500
        assert_error(response, response.status_code)
        assert response.status_code in (401, 403, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/key-value-stores"),
        ("DELETE", "/key-value-stores"),
        ("PUT", "/key-value-stores"),
        ("POST", "/key-value-stores/{id}"),
        ("PATCH", "/key-value-stores/{id}"),
        ("POST", "/key-value-stores/{id}/keys"),
        ("DELETE", "/key-value-stores/{id}/keys"),
        ("PUT", "/key-value-stores/{id}/records"),
        ("PATCH", "/key-value-stores/{id}/records/k"),
    ],
)
def test_method_not_allowed(http: httpx.Client, store: dict[str, Any], method: str, path: str) -> None:
    response = http.request(method, path.format(id=store["id"]))
    assert_error(response, 405, "method-not-allowed")
    allowed = {m.strip().upper() for m in response.headers["allow"].split(",")}
    assert method not in allowed
    assert "GET" in allowed


def test_method_override_deletes_a_store(http: httpx.Client) -> None:
    store = create_named(http)
    response = http.get(f"/key-value-stores/{store['id']}", params={"method": "DELETE"})
    assert response.status_code == 204
    assert_error(http.get(f"/key-value-stores/{store['id']}"), 404, "record-not-found")


def test_method_override_creates_a_store(http: httpx.Client) -> None:
    name = unique("ct")
    response = http.get("/key-value-stores", params={"method": "POST", "name": name})
    created = data_of(response, 201)
    assert created["name"] == name
    assert get_store(http, f"~{name}")["id"] == created["id"]


def test_method_override_deletes_a_record(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "k", b"v")
    assert http.get(record_path(store, "k"), params={"method": "DELETE"}).status_code == 204
    assert_error(http.get(record_path(store, "k")), 404, "record-not-found")


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/key-value-stores/{id}/nope",
        "/key-value-stores/{id}/records/k/extra",
        "/key-value-stores/{id}/keys/extra",
    ],
)
def test_unknown_path(http: httpx.Client, store: dict[str, Any], path: str) -> None:
    assert_error(http.get(path.format(id=store["id"])), 404)


def test_unknown_path_outside_the_api(server: Server) -> None:
    status, _, _ = server.raw_request("GET", "/not-the-api")
    assert status == 404
