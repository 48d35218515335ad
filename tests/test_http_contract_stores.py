"""The HTTP contract of key-value stores: listing, creating, the store object, reading, renaming and
deleting one, and listing its keys.

With plain httpx against the app in-process on every engine. What is asserted here is what the specification
says (the API reference and what the official clients send and expect), not what the code happens to do.
"""

from __future__ import annotations

import gzip
import io
import time
import uuid
import zipfile
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.conftest import Server, every_engine
from tests.harness.contract import (
    GENERAL_ACCESS,
    STATS_FIELDS,
    USERNAME,
    create_named,
    get_store,
    is_absolute_url,
    keys_page,
    put,
    record_path,
    wait_for_stats,
)
from tests.harness.envelope import assert_error, data_of, unique

server = every_engine(in_process=True)


# --- GET /v2/key-value-stores


def test_list_stores_envelope_and_default_limit(http: httpx.Client) -> None:
    create_named(http)
    page = data_of(http.get("/key-value-stores"))
    for field in ("total", "offset", "limit", "count", "desc", "items"):
        assert field in page
    assert page["offset"] == 0
    assert page["limit"] == 1000
    assert page["desc"] is False
    assert page["count"] == len(page["items"])
    assert page["total"] >= page["count"] >= 1


def test_list_stores_limit_is_clamped_to_1000(http: httpx.Client) -> None:
    page = data_of(http.get("/key-value-stores", params={"limit": 5000}))
    assert page["limit"] == 1000


def test_list_stores_limit_is_at_least_one(http: httpx.Client) -> None:
    create_named(http)
    page = data_of(http.get("/key-value-stores", params={"limit": 1}))
    assert page["limit"] == 1
    assert page["count"] == 1
    assert len(page["items"]) == 1
    assert page["total"] >= 1


def test_list_stores_named_only_by_default(http: httpx.Client, store: dict[str, Any]) -> None:
    named = create_named(http)
    page = data_of(http.get("/key-value-stores", params={"desc": 1}))
    ids = [item["id"] for item in page["items"]]
    assert named["id"] in ids
    assert store["id"] not in ids
    assert all(item["name"] for item in page["items"])


@pytest.mark.parametrize("flag", ["true", "1"])
def test_list_stores_unnamed_flag_includes_unnamed(
    http: httpx.Client, store: dict[str, Any], flag: str
) -> None:
    named_total = data_of(http.get("/key-value-stores", params={"limit": 1}))["total"]
    page = data_of(http.get("/key-value-stores", params={"unnamed": flag, "desc": 1}))
    ids = [item["id"] for item in page["items"]]
    assert store["id"] in ids
    assert page["total"] > named_total


@pytest.mark.parametrize("flag", ["false", "0"])
def test_list_stores_false_flags(http: httpx.Client, store: dict[str, Any], flag: str) -> None:
    page = data_of(http.get("/key-value-stores", params={"unnamed": flag, "desc": flag}))
    assert page["desc"] is False
    assert store["id"] not in [item["id"] for item in page["items"]]


def test_list_stores_ownership(http: httpx.Client) -> None:
    named = create_named(http)
    mine = data_of(http.get("/key-value-stores", params={"ownership": "ownedByMe", "desc": 1}))
    assert named["id"] in [item["id"] for item in mine["items"]]
    shared = data_of(http.get("/key-value-stores", params={"ownership": "sharedWithMe"}))
    assert named["id"] not in [item["id"] for item in shared["items"]]


@pytest.mark.parametrize("flag", ["1", "true"])
def test_list_stores_desc_and_offset(http: httpx.Client, flag: str) -> None:
    created = [create_named(http)["id"] for _ in range(3)]
    page = data_of(http.get("/key-value-stores", params={"desc": flag, "limit": 3}))
    assert page["desc"] is True
    assert [item["id"] for item in page["items"]] == created[::-1]

    page = data_of(http.get("/key-value-stores", params={"desc": flag, "offset": 1, "limit": 2}))
    assert page["offset"] == 1
    assert page["limit"] == 2
    assert page["count"] == 2
    assert [item["id"] for item in page["items"]] == created[1::-1]

    total = page["total"]
    ascending = data_of(http.get("/key-value-stores", params={"offset": total - 3, "limit": 10}))
    assert ascending["desc"] is False
    assert ascending["offset"] == total - 3
    assert ascending["count"] == 3
    assert [item["id"] for item in ascending["items"]] == created


def test_list_stores_offset_past_the_end(http: httpx.Client) -> None:
    create_named(http)
    total = data_of(http.get("/key-value-stores", params={"limit": 1}))["total"]
    page = data_of(http.get("/key-value-stores", params={"offset": total + 10}))
    assert page["count"] == 0
    assert page["items"] == []
    assert page["total"] == total


@pytest.mark.parametrize(
    "params", [{"limit": "abc"}, {"offset": "-1"}, {"offset": "abc"}, {"limit": "-5"}, {"offset": "1.5"}]
)
def test_list_stores_bad_parameters(http: httpx.Client, params: dict[str, str]) -> None:
    error = assert_error(http.get("/key-value-stores", params=params), 400)
    assert error["type"] in ("invalid-value", "invalid-request")


# --- POST /v2/key-value-stores


def test_create_named_store_then_get_or_create(http: httpx.Client) -> None:
    name = unique("ct")
    response = http.post("/key-value-stores", params={"name": name})
    created = data_of(response, 201)
    assert created["name"] == name
    location = response.headers["location"]
    assert location.endswith(f"/v2/key-value-stores/{created['id']}")

    again = http.post("/key-value-stores", params={"name": name})
    existing = data_of(again, 200)
    assert existing["id"] == created["id"]
    assert existing["name"] == name


def test_create_without_name_makes_a_new_unnamed_store_each_time(http: httpx.Client) -> None:
    first = http.post("/key-value-stores")
    second = http.post("/key-value-stores")
    a, b = data_of(first, 201), data_of(second, 201)
    assert a["name"] is None
    assert b["name"] is None
    assert a["id"] != b["id"]
    assert first.headers["location"].endswith(f"/v2/key-value-stores/{a['id']}")


def test_create_accepts_a_schema_body(http: httpx.Client) -> None:
    schema = {
        "actorKeyValueStoreSchemaVersion": 1,
        "title": "Screenshots",
        "collections": {"shots": {"title": "Shots", "keyPrefix": "shot-"}},
    }
    response = http.post("/key-value-stores", params={"name": unique("ct")}, json={"schema": schema})
    assert data_of(response, 201)["id"]


def test_create_accepts_a_gzipped_json_body(http: httpx.Client) -> None:
    body = gzip.compress(b'{"schema": {"actorKeyValueStoreSchemaVersion": 1, "title": "t"}}')
    response = http.post(
        "/key-value-stores",
        params={"name": unique("ct")},
        content=body,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert data_of(response, 201)["id"]


@pytest.mark.parametrize("name", ["a", "a-b-1", "0x", "n" * 63])
def test_create_valid_names(http: httpx.Client, name: str) -> None:
    if len(name) > 10:
        name = name[:-12] + uuid.uuid4().hex[:12]
    response = http.post("/key-value-stores", params={"name": name})
    assert response.status_code in (200, 201)
    assert data_of(response, response.status_code)["name"] == name


@pytest.mark.parametrize(
    "name",
    ["-abc", "abc-", "-", "a" * 64, "has space", "under_score", "dot.name", "slash/name", "tilde~name", "é"],
)
def test_create_invalid_names(http: httpx.Client, name: str) -> None:
    assert_error(http.post("/key-value-stores", params={"name": name}), 400, "invalid-value")


# --- the store object


def test_store_object_fields(server: Server, http: httpx.Client) -> None:
    me = data_of(http.get("/users/me"))
    store = create_named(http)
    for field in (
        "id",
        "name",
        "userId",
        "username",
        "createdAt",
        "modifiedAt",
        "accessedAt",
        "actId",
        "actRunId",
        "consoleUrl",
        "keysPublicUrl",
        "recordsPublicUrl",
        "urlSigningSecretKey",
        "generalAccess",
        "stats",
    ):
        assert field in store, field
    assert isinstance(store["id"], str)
    assert store["id"]
    assert store["userId"] == me["id"]
    assert store["username"] == USERNAME
    for stamp in ("createdAt", "modifiedAt", "accessedAt"):
        assert store[stamp].endswith("Z")
        assert datetime.fromisoformat(store[stamp]).tzinfo is not None
    assert store["actId"] is None
    assert store["actRunId"] is None
    assert isinstance(store["consoleUrl"], str)
    assert is_absolute_url(store["keysPublicUrl"])
    assert urlparse(store["keysPublicUrl"]).path.endswith(f"/v2/key-value-stores/{store['id']}/keys")
    assert is_absolute_url(store["recordsPublicUrl"])
    assert urlparse(store["recordsPublicUrl"]).path.endswith(f"/v2/key-value-stores/{store['id']}/records")
    assert isinstance(store["urlSigningSecretKey"], str)
    assert store["urlSigningSecretKey"]
    assert store["generalAccess"] in GENERAL_ACCESS
    assert set(STATS_FIELDS) <= set(store["stats"])
    assert all(store["stats"][field] == 0 for field in STATS_FIELDS)

    fetched = get_store(http, store["id"])
    assert fetched["id"] == store["id"]
    assert fetched["createdAt"] == store["createdAt"]
    assert set(fetched) >= set(store) - {"urlSigningSecretKey"}


def test_store_stats_follow_operations(http: httpx.Client, store: dict[str, Any]) -> None:
    compressed = gzip.compress(b"x" * 5000)
    put(http, store, "plain", b"abc", "text/plain")
    put(http, store, "zipped", compressed, "text/plain", "gzip")
    stats = get_store(http, store["id"])["stats"]
    assert stats["writeCount"] == 2
    assert stats["deleteCount"] == 0
    assert stats["storageBytes"] == 3 + len(compressed)
    assert stats["s3StorageBytes"] == stats["storageBytes"]

    put(http, store, "plain", b"abcdefgh", "text/plain")  # overwrite: size moves by the difference
    stats = get_store(http, store["id"])["stats"]
    assert stats["writeCount"] == 3
    assert stats["storageBytes"] == 8 + len(compressed)

    assert http.delete(record_path(store, "plain")).status_code == 204
    stats = get_store(http, store["id"])["stats"]
    assert stats["deleteCount"] == 1
    assert stats["writeCount"] == 3
    assert stats["storageBytes"] == len(compressed)
    assert stats["s3StorageBytes"] == len(compressed)

    for _ in range(2):
        assert http.get(record_path(store, "zipped")).status_code == 200
    assert http.get(f"/key-value-stores/{store['id']}/keys").status_code == 200
    wait_for_stats(http, store["id"], readCount=2, listCount=1, writeCount=3, deleteCount=1)


def test_store_timestamps_move(http: httpx.Client, store: dict[str, Any]) -> None:
    time.sleep(0.01)
    put(http, store, "k", b"v")
    after_write = get_store(http, store["id"])
    assert after_write["modifiedAt"] > store["modifiedAt"]
    assert after_write["accessedAt"] > store["accessedAt"]
    assert after_write["createdAt"] == store["createdAt"]


# --- GET / PUT / DELETE /v2/key-value-stores/{storeId}


def test_get_store_by_id_and_by_name(http: httpx.Client) -> None:
    store = create_named(http)
    name = store["name"]
    for ref in (store["id"], f"~{name}", f"{USERNAME}~{name}"):
        assert get_store(http, ref)["id"] == store["id"], ref


def test_get_missing_store(http: httpx.Client) -> None:
    assert_error(http.get("/key-value-stores/NoSuchStoreId1234"), 404, "record-not-found")
    assert_error(http.get(f"/key-value-stores/~{unique('missing')}"), 404, "record-not-found")
    assert_error(http.get(f"/key-value-stores/{USERNAME}~{unique('missing')}"), 404, "record-not-found")


def test_rename_and_unname_store(http: httpx.Client) -> None:
    store = create_named(http)
    new_name = unique("renamed")
    renamed = data_of(http.put(f"/key-value-stores/{store['id']}", json={"name": new_name}))
    assert renamed["id"] == store["id"]
    assert renamed["name"] == new_name
    assert get_store(http, f"~{new_name}")["id"] == store["id"]
    assert_error(http.get(f"/key-value-stores/~{store['name']}"), 404, "record-not-found")

    # By name, too.
    other = unique("again")
    assert data_of(http.put(f"/key-value-stores/~{new_name}", json={"name": other}))["name"] == other

    unnamed = data_of(http.put(f"/key-value-stores/{store['id']}", json={"name": None}))
    assert unnamed["name"] is None
    assert get_store(http, store["id"])["name"] is None
    assert_error(http.get(f"/key-value-stores/~{other}"), 404, "record-not-found")
    listed = data_of(http.get("/key-value-stores", params={"desc": 1}))["items"]
    assert store["id"] not in [item["id"] for item in listed]


def test_rename_to_its_own_name(http: httpx.Client) -> None:
    store = create_named(http)
    same = data_of(http.put(f"/key-value-stores/{store['id']}", json={"name": store["name"]}))
    assert same["name"] == store["name"]
    assert same["id"] == store["id"]


def test_rename_onto_a_taken_name(http: httpx.Client) -> None:
    first = create_named(http)
    second = create_named(http)
    response = http.put(f"/key-value-stores/{second['id']}", json={"name": first["name"]})
    assert_error(response, 409, "name-not-unique")
    assert get_store(http, second["id"])["name"] == second["name"]


def test_rename_to_an_invalid_name(http: httpx.Client, store: dict[str, Any]) -> None:
    response = http.put(f"/key-value-stores/{store['id']}", json={"name": "not valid!"})
    assert_error(response, 400, "invalid-value")


@pytest.mark.parametrize("body", [b"[1, 2]", b'"name"', b"42"])
def test_update_store_non_object_body(http: httpx.Client, store: dict[str, Any], body: bytes) -> None:
    response = http.put(
        f"/key-value-stores/{store['id']}", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 400)


def test_update_store_invalid_json(http: httpx.Client, store: dict[str, Any]) -> None:
    response = http.put(
        f"/key-value-stores/{store['id']}", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid-request")


def test_update_missing_store(http: httpx.Client) -> None:
    response = http.put("/key-value-stores/NoSuchStoreId1234", json={"name": unique("ct")})
    assert_error(response, 404, "record-not-found")


def test_delete_store(http: httpx.Client) -> None:
    store = create_named(http)
    put(http, store, "k", b"v")
    response = http.delete(f"/key-value-stores/{store['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_error(http.get(f"/key-value-stores/{store['id']}"), 404, "record-not-found")
    assert_error(http.get(record_path(store, "k")), 404, "record-not-found")
    assert_error(http.get(f"/key-value-stores/{store['id']}/keys"), 404, "record-not-found")
    # The name is free again.
    assert data_of(http.post("/key-value-stores", params={"name": store["name"]}), 201)["id"] != store["id"]


def test_delete_store_by_name(http: httpx.Client) -> None:
    store = create_named(http)
    assert http.delete(f"/key-value-stores/{USERNAME}~{store['name']}").status_code == 204
    assert_error(http.get(f"/key-value-stores/{store['id']}"), 404, "record-not-found")


def test_delete_missing_store(http: httpx.Client) -> None:
    assert_error(http.delete("/key-value-stores/NoSuchStoreId1234"), 404, "record-not-found")


# --- GET /v2/key-value-stores/{storeId}/keys


def test_keys_listing_shape(server: Server, http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "alpha", b"12345", "text/plain")
    page = keys_page(http, store)
    for field in ("items", "count", "limit", "isTruncated", "exclusiveStartKey", "nextExclusiveStartKey"):
        assert field in page, field
    assert page["count"] == 1
    assert page["limit"] == 1000
    assert page["isTruncated"] is False
    assert page["exclusiveStartKey"] is None
    assert page["nextExclusiveStartKey"] is None
    [item] = page["items"]
    assert item["key"] == "alpha"
    assert item["size"] == 5
    url = item["recordPublicUrl"]
    assert is_absolute_url(url)
    assert urlparse(url).path.endswith(f"/v2/key-value-stores/{store['id']}/records/alpha")
    # The URL is usable as it is.
    fetched = http.get(url)
    assert fetched.status_code == 200
    assert fetched.content == b"12345"


def test_keys_size_is_the_stored_length(http: httpx.Client, store: dict[str, Any]) -> None:
    compressed = gzip.compress(b"y" * 4000)
    put(http, store, "z", compressed, "text/plain", "gzip")
    [item] = keys_page(http, store)["items"]
    assert item["size"] == len(compressed)


def test_keys_empty_store(http: httpx.Client, store: dict[str, Any]) -> None:
    page = keys_page(http, store)
    assert page["items"] == []
    assert page["count"] == 0
    assert page["isTruncated"] is False
    assert "nextExclusiveStartKey" in page
    assert page["nextExclusiveStartKey"] is None


def test_keys_limit_is_clamped(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "k", b"v")
    page = keys_page(http, store, limit=5000)
    assert page["limit"] == 1000
    assert page["count"] == 1


def test_keys_pagination(http: httpx.Client, store: dict[str, Any]) -> None:
    keys = [f"key-{i}" for i in range(5)]
    for key in keys:
        put(http, store, key, key.encode())
    seen: list[str] = []
    start: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if start is not None:
            params["exclusiveStartKey"] = start
        page = keys_page(http, store, **params)
        pages += 1
        assert page["limit"] == 2
        assert page["exclusiveStartKey"] == start
        assert page["count"] == len(page["items"])
        seen += [item["key"] for item in page["items"]]
        if not page["isTruncated"]:
            assert "nextExclusiveStartKey" in page
            assert page["nextExclusiveStartKey"] is None
            break
        assert page["nextExclusiveStartKey"] == page["items"][-1]["key"]
        start = page["nextExclusiveStartKey"]
        assert pages < 10
    assert seen == keys
    assert pages == 3


def test_keys_full_last_page_is_not_truncated(http: httpx.Client, store: dict[str, Any]) -> None:
    for key in ("a", "b", "c", "d"):
        put(http, store, key, b"x")
    page = keys_page(http, store, limit=2, exclusiveStartKey="b")
    assert [item["key"] for item in page["items"]] == ["c", "d"]
    assert page["isTruncated"] is False
    assert page["nextExclusiveStartKey"] is None


def test_keys_exclusive_start_key_that_does_not_exist(http: httpx.Client, store: dict[str, Any]) -> None:
    for key in ("a", "b", "c"):
        put(http, store, key, b"x")
    page = keys_page(http, store, exclusiveStartKey="aa")
    assert [item["key"] for item in page["items"]] == ["b", "c"]
    assert page["exclusiveStartKey"] == "aa"
    assert [item["key"] for item in keys_page(http, store, exclusiveStartKey="b")["items"]] == ["c"]
    assert keys_page(http, store, exclusiveStartKey="zzz")["items"] == []


def test_keys_prefix(http: httpx.Client, store: dict[str, Any]) -> None:
    for key in ("pre-1", "pre-2", "pre", "other", "PRE-3"):
        put(http, store, key, b"x")
    assert [item["key"] for item in keys_page(http, store, prefix="pre-")["items"]] == ["pre-1", "pre-2"]
    page = keys_page(http, store, prefix="pre-", exclusiveStartKey="pre-1")
    assert [item["key"] for item in page["items"]] == ["pre-2"]


def test_keys_collection(http: httpx.Client) -> None:
    schema = {
        "actorKeyValueStoreSchemaVersion": 1,
        "title": "With collections",
        "collections": {
            "shots": {"title": "Shots", "keyPrefix": "shot-"},
            "input": {"title": "Input", "key": "INPUT"},
        },
    }
    store = data_of(
        http.post("/key-value-stores", params={"name": unique("ct")}, json={"schema": schema}), 201
    )
    for key in ("shot-1", "shot-2", "INPUT", "INPUT-2", "other"):
        put(http, store, key, key.encode())
    assert [i["key"] for i in keys_page(http, store, collection="shots")["items"]] == ["shot-1", "shot-2"]
    assert [i["key"] for i in keys_page(http, store, collection="input")["items"]] == ["INPUT"]
    response = http.get(f"/key-value-stores/{store['id']}/records", params={"collection": "shots"})
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == ["shot-1", "shot-2"]


def test_keys_utf8_binary_order(http: httpx.Client, store: dict[str, Any]) -> None:
    keys = ["B", "a", "_", "(", "0", "Z", "!", "-", ".x", "'", ")", "zz", "A", "9", "b_", "bA"]
    for key in keys:
        put(http, store, key, b"x")
    listed = [item["key"] for item in keys_page(http, store)["items"]]
    assert listed == sorted(keys, key=lambda k: k.encode())


def test_keys_of_missing_store(http: httpx.Client) -> None:
    assert_error(http.get("/key-value-stores/NoSuchStoreId1234/keys"), 404, "record-not-found")
