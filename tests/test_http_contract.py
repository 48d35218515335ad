"""The HTTP contract, endpoint by endpoint, with plain httpx against the app in-process on every engine.

What is asserted here is what the specification says (the API reference and what the official clients send
and expect), not what the code happens to do.
"""

from __future__ import annotations

import gzip
import io
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import brotli
import httpx
import pytest

from tests.conftest import Server, every_engine

server = every_engine(in_process=True)


USERNAME = "admin"
KEY_CHARS = "!-_.'()"
STATS_FIELDS = ("readCount", "writeCount", "deleteCount", "listCount", "storageBytes", "s3StorageBytes")
GENERAL_ACCESS = ("RESTRICTED", "ANYONE_WITH_ID_CAN_READ", "ANYONE_WITH_NAME_CAN_READ", "FOLLOW_USER_SETTING")
COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
}


# --- helpers


def unique(prefix: str = "ct") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def assert_error(response: httpx.Response, status: int, error_type: str | None = None) -> dict[str, Any]:
    """The status, and the error envelope `{"error": {"type", "message"}}` with nothing else beside it."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["type"], str)
    assert error["type"]
    assert isinstance(error["message"], str)
    assert error["message"]
    if error_type is not None:
        assert error["type"] == error_type, error
    return error  # type: ignore[no-any-return]


def data_of(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"data"}, body
    return body["data"]


def create_named(http: httpx.Client, name: str | None = None) -> dict[str, Any]:
    response = http.post("/key-value-stores", params={"name": name or unique()})
    return data_of(response, 201)  # type: ignore[no-any-return]


def get_store(http: httpx.Client, store_id: str) -> dict[str, Any]:
    return data_of(http.get(f"/key-value-stores/{store_id}"))  # type: ignore[no-any-return]


def record_path(store: dict[str, Any], key: str) -> str:
    return f"/key-value-stores/{store['id']}/records/{key}"


def put(
    http: httpx.Client,
    store: dict[str, Any],
    key: str,
    body: bytes,
    content_type: str | None = "application/octet-stream",
    encoding: str | None = None,
) -> httpx.Response:
    headers = {}
    if content_type is not None:
        headers["content-type"] = content_type
    if encoding is not None:
        headers["content-encoding"] = encoding
    response = http.put(record_path(store, key), content=body, headers=headers)
    assert response.status_code in (200, 201), (response.status_code, response.text)
    return response


def raw_get(http: httpx.Client, path: str, accept_encoding: str) -> tuple[httpx.Response, bytes]:
    """GET with no automatic decoding: the bytes exactly as they came over the wire."""
    with http.stream("GET", path, headers={"accept-encoding": accept_encoding}) as response:
        body = b"".join(response.iter_raw())
    return response, body


def keys_page(http: httpx.Client, store: dict[str, Any], **params: Any) -> dict[str, Any]:
    return data_of(http.get(f"/key-value-stores/{store['id']}/keys", params=params))  # type: ignore[no-any-return]


def wait_for_stats(http: httpx.Client, store_id: str, **expected: int) -> dict[str, Any]:
    """Read and list counters may be buffered: poll for up to 3 s until they show the expected values."""
    deadline = time.monotonic() + 3
    while True:
        stats: dict[str, Any] = get_store(http, store_id)["stats"]
        if all(stats[name] == value for name, value in expected.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for name, value in expected.items():
        assert stats[name] == value, (name, stats)
    return stats


def is_absolute_url(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


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
    name = unique()
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
    response = http.post("/key-value-stores", params={"name": unique()}, json={"schema": schema})
    assert data_of(response, 201)["id"]


def test_create_accepts_a_gzipped_json_body(http: httpx.Client) -> None:
    body = gzip.compress(b'{"schema": {"actorKeyValueStoreSchemaVersion": 1, "title": "t"}}')
    response = http.post(
        "/key-value-stores",
        params={"name": unique()},
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
    response = http.put("/key-value-stores/NoSuchStoreId1234", json={"name": unique()})
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
    store = data_of(http.post("/key-value-stores", params={"name": unique()}, json={"schema": schema}), 201)
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


# --- records


def test_put_and_get_record_exactly(http: httpx.Client, store: dict[str, Any]) -> None:
    body = bytes(range(256)) * 7
    response = http.put(
        record_path(store, "bin"), content=body, headers={"content-type": "image/x-custom; foo=bar"}
    )
    assert response.status_code in (200, 201)
    assert response.headers["location"].endswith(f"/v2/key-value-stores/{store['id']}/records/bin")
    got = http.get(record_path(store, "bin"))
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["content-type"] == "image/x-custom; foo=bar"
    assert "accept-encoding" in got.headers["vary"].lower()


def test_put_json_record(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "INPUT", b'{"foo": "bar"}', "application/json; charset=utf-8")
    got = http.get(record_path(store, "INPUT"))
    assert got.json() == {"foo": "bar"}
    assert got.headers["content-type"] == "application/json; charset=utf-8"


def test_post_is_an_alias_of_put(http: httpx.Client, store: dict[str, Any]) -> None:
    response = http.post(
        record_path(store, "posted"), content=b"hello", headers={"content-type": "text/plain"}
    )
    assert response.status_code in (200, 201)
    got = http.get(record_path(store, "posted"))
    assert got.content == b"hello"
    assert got.headers["content-type"] == "text/plain"


def test_put_overwrites(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "k", b"first", "text/plain")
    put(http, store, "k", b"second value", "application/x-second")
    got = http.get(record_path(store, "k"))
    assert got.content == b"second value"
    assert got.headers["content-type"] == "application/x-second"


def test_put_without_content_type(http: httpx.Client, store: dict[str, Any]) -> None:
    response = http.put(record_path(store, "untyped"), content=b"\x00\x01data")
    assert "content-type" not in response.request.headers
    assert response.status_code in (200, 201)
    got = http.get(record_path(store, "untyped"))
    assert got.status_code == 200
    assert got.content == b"\x00\x01data"
    assert got.headers.get("content-type")


def test_put_empty_body(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "empty", b"", "text/plain")
    got = http.get(record_path(store, "empty"))
    assert got.status_code == 200
    assert got.content == b""
    assert got.headers["content-type"] == "text/plain"


def test_head_record(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "here", b"12345", "text/plain")
    present = http.head(record_path(store, "here"))
    assert present.status_code == 200
    assert present.content == b""
    assert present.headers["content-type"] == "text/plain"

    absent = http.head(record_path(store, "absent"))
    assert absent.status_code == 404
    assert absent.content == b""


def test_head_record_of_missing_store(http: httpx.Client) -> None:
    response = http.head("/key-value-stores/NoSuchStoreId1234/records/k")
    assert response.status_code == 404
    assert response.content == b""


def test_delete_record(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "gone", b"x")
    response = http.delete(record_path(store, "gone"))
    assert response.status_code == 204
    assert response.content == b""
    assert_error(http.get(record_path(store, "gone")), 404, "record-not-found")
    assert http.head(record_path(store, "gone")).status_code == 404
    assert keys_page(http, store)["items"] == []


def test_get_missing_record(http: httpx.Client, store: dict[str, Any]) -> None:
    assert_error(http.get(record_path(store, "nothing-here")), 404, "record-not-found")


def test_record_of_missing_store(http: httpx.Client) -> None:
    assert_error(http.get("/key-value-stores/NoSuchStoreId1234/records/k"), 404, "record-not-found")
    assert_error(http.get(f"/key-value-stores/~{unique('missing')}/records/k"), 404, "record-not-found")
    response = http.put(
        "/key-value-stores/NoSuchStoreId1234/records/k", content=b"x", headers={"content-type": "text/plain"}
    )
    assert_error(response, 404, "record-not-found")


def test_records_by_store_name(http: httpx.Client) -> None:
    store = create_named(http)
    for ref in (f"~{store['name']}", f"{USERNAME}~{store['name']}"):
        response = http.put(
            f"/key-value-stores/{ref}/records/by-name",
            content=ref.encode(),
            headers={"content-type": "text/plain"},
        )
        assert response.status_code in (200, 201)
        assert http.get(record_path(store, "by-name")).content == ref.encode()
        assert http.get(f"/key-value-stores/{ref}/records/by-name").content == ref.encode()


# --- Content-Encoding


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compressed_upload_served_as_stored_or_decoded(
    http: httpx.Client, store: dict[str, Any], encoding: str
) -> None:
    payload = b'{"hello": "world"} ' * 200
    compressed = COMPRESSORS[encoding](payload)
    put(http, store, "packed", compressed, "application/json", encoding)
    path = record_path(store, "packed")

    response, body = raw_get(http, path, f"identity, {encoding}")
    assert response.status_code == 200
    assert response.headers["content-encoding"] == encoding
    assert body == compressed
    assert response.headers["content-type"] == "application/json"
    assert "accept-encoding" in response.headers["vary"].lower()

    response, body = raw_get(http, path, "identity")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert body == payload
    assert response.headers["content-type"] == "application/json"
    assert "accept-encoding" in response.headers["vary"].lower()

    # httpx's own decoding gives the payload whatever it negotiated.
    assert http.get(path).content == payload


def test_stored_encoding_not_accepted_is_decoded(http: httpx.Client, store: dict[str, Any]) -> None:
    payload = b"abc" * 1000
    put(http, store, "g", gzip.compress(payload), "text/plain", "gzip")
    response, body = raw_get(http, record_path(store, "g"), "br")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert body == payload


@pytest.mark.parametrize(
    ("accept_encoding", "stored"),
    [("*", True), ("GZIP", True), ("br, gzip;q=0.5", True), ("gzip;q=0", False), ("gzip;q=0, *", False)],
)
def test_accept_encoding_negotiation(
    http: httpx.Client, store: dict[str, Any], accept_encoding: str, stored: bool
) -> None:
    payload = b"negotiate " * 100
    compressed = gzip.compress(payload)
    put(http, store, "n", compressed, "text/plain", "gzip")
    response, body = raw_get(http, record_path(store, "n"), accept_encoding)
    assert response.status_code == 200
    if stored:
        assert response.headers["content-encoding"] == "gzip"
        assert body == compressed
    else:
        assert "content-encoding" not in response.headers
        assert body == payload


def test_identity_record_has_vary(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "plain", b"plain", "text/plain")
    response, body = raw_get(http, record_path(store, "plain"), "gzip, br")
    assert body == b"plain"
    assert "content-encoding" not in response.headers
    assert "accept-encoding" in response.headers["vary"].lower()


def test_identity_content_encoding_is_accepted(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "ident", b"as is", "text/plain", "identity")
    response, body = raw_get(http, record_path(store, "ident"), "gzip")
    assert body == b"as is"
    assert response.headers.get("content-encoding", "identity") == "identity"


@pytest.mark.parametrize("encoding", ["compress", "zstd", "gzip, br", "bogus"])
def test_unsupported_content_encoding(http: httpx.Client, store: dict[str, Any], encoding: str) -> None:
    response = http.put(
        record_path(store, "enc"),
        content=b"whatever",
        headers={"content-type": "text/plain", "content-encoding": encoding},
    )
    assert_error(response, 415, "unsupported-content-encoding")
    assert http.head(record_path(store, "enc")).status_code == 404


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_body_that_lies_about_its_encoding(http: httpx.Client, store: dict[str, Any], encoding: str) -> None:
    response = http.put(
        record_path(store, "liar"),
        content=b"this is not compressed at all" * 10,
        headers={"content-type": "text/plain", "content-encoding": encoding},
    )
    assert_error(response, 400)
    assert http.head(record_path(store, "liar")).status_code == 404
    assert keys_page(http, store)["items"] == []


def test_truncated_gzip_body(http: httpx.Client, store: dict[str, Any]) -> None:
    compressed = gzip.compress(b"0123456789" * 1000)
    response = http.put(
        record_path(store, "cut"),
        content=compressed[: len(compressed) // 2],
        headers={"content-type": "text/plain", "content-encoding": "gzip"},
    )
    assert_error(response, 400)
    assert http.head(record_path(store, "cut")).status_code == 404


# --- Content-Disposition and stored HTML


@pytest.mark.parametrize("flag", ["1", "true"])
def test_attachment_flag(http: httpx.Client, store: dict[str, Any], flag: str) -> None:
    put(http, store, "file", b"data", "text/plain")
    response = http.get(record_path(store, "file"), params={"attachment": flag})
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.content == b"data"


def test_stored_html_is_served_safely(http: httpx.Client, store: dict[str, Any]) -> None:
    html = b"<html><body><script>alert(document.cookie)</script></body></html>"
    put(http, store, "page", html, "text/html; charset=utf-8")
    response = http.get(record_path(store, "page"))
    assert response.status_code == 200
    csp = response.headers.get("content-security-policy", "")
    disposition = response.headers.get("content-disposition", "")
    assert "sandbox" in csp or disposition.startswith("attachment"), response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


# --- record keys


def test_longest_key(http: httpx.Client, store: dict[str, Any]) -> None:
    key = "k" * 256
    put(http, store, key, b"long")
    assert http.get(record_path(store, key)).content == b"long"
    assert [item["key"] for item in keys_page(http, store)["items"]] == [key]


def test_key_too_long(http: httpx.Client, store: dict[str, Any]) -> None:
    key = "k" * 257
    response = http.put(record_path(store, key), content=b"x", headers={"content-type": "text/plain"})
    assert_error(response, 400, "invalid-record-key")
    assert_error(http.get(record_path(store, key)), 400, "invalid-record-key")


@pytest.mark.parametrize(
    "raw_key", ["has%20space", "a%2Fb", "%2F", "semi%3Bcolon", "tilde~", "%C3%A9", "a%0A"]
)
def test_invalid_keys(http: httpx.Client, store: dict[str, Any], raw_key: str) -> None:
    url = httpx.URL(f"{http.base_url}".rstrip("/") + record_path(store, raw_key))
    response = http.put(url, content=b"x", headers={"content-type": "text/plain"})
    assert_error(response, 400, "invalid-record-key")
    assert_error(http.get(url), 400, "invalid-record-key")
    assert keys_page(http, store)["items"] == []


def test_special_characters_in_keys(http: httpx.Client, store: dict[str, Any]) -> None:
    keys = [KEY_CHARS, "a!b", "it's", "(x)", "a.b", "...", "-_-", "A-Z_0.9"]
    for key in keys:
        put(http, store, key, key.encode(), "text/plain")
    for key in keys:
        got = http.get(record_path(store, key))
        assert got.status_code == 200, key
        assert got.content == key.encode()
    listed = [item["key"] for item in keys_page(http, store)["items"]]
    assert listed == sorted(keys, key=lambda k: k.encode())


def test_percent_encoded_valid_key(server: Server, http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "abc(1)", b"enc", "text/plain")
    status, _, body = server.raw_request("GET", f"/v2/key-value-stores/{store['id']}/records/abc%281%29")
    assert status == 200
    assert body == b"enc"


@pytest.mark.parametrize("segment", ["%2E", "%2E%2E", "%2e", "%2e%2e", ".%2E"])
def test_dot_keys_are_refused(
    server: Server, http: httpx.Client, store: dict[str, Any], segment: str
) -> None:
    path = f"/v2/key-value-stores/{store['id']}/records/{segment}"
    for method, body in (("PUT", b"dot"), ("GET", None)):
        status, headers, raw = server.raw_request(method, path, body)
        response = httpx.Response(status, headers=headers, content=raw)
        assert_error(response, 400, "invalid-record-key")
    assert keys_page(http, store)["items"] == []
    assert get_store(http, store["id"])["name"] is None  # nothing changed the store itself


@pytest.mark.parametrize("segment", [".", ".."])
def test_literal_dot_segments_are_refused(
    server: Server, http: httpx.Client, store: dict[str, Any], segment: str
) -> None:
    path = f"/v2/key-value-stores/{store['id']}/records/{segment}"
    for method, body in (("PUT", b"dot"), ("GET", None)):
        status, headers, raw = server.raw_request(method, path, body)
        assert_error(httpx.Response(status, headers=headers, content=raw), 400, "invalid-record-key")
    assert keys_page(http, store)["items"] == []


# --- GET /v2/key-value-stores/{storeId}/records (ZIP)


def test_download_all_records_as_zip(http: httpx.Client, store: dict[str, Any]) -> None:
    records = {
        "a-text": (b"plain text", None),
        "b-gzip": (b"gzipped " * 300, "gzip"),
        "c-br": (b"brotli " * 300, "br"),
        "d-deflate": (b"deflated " * 300, "deflate"),
        "other": (b"other", None),
    }
    for key, (payload, encoding) in records.items():
        body = COMPRESSORS[encoding](payload) if encoding else payload
        put(http, store, key, body, "text/plain", encoding)

    response = http.get(f"/key-value-stores/{store['id']}/records")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/zip")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == sorted(records)
        for key, (payload, _) in records.items():
            assert archive.read(key) == payload, key

    filtered = http.get(f"/key-value-stores/{store['id']}/records", params={"prefix": "b-"})
    assert filtered.status_code == 200
    with zipfile.ZipFile(io.BytesIO(filtered.content)) as archive:
        assert archive.namelist() == ["b-gzip"]


def test_download_empty_store_as_zip(http: httpx.Client, store: dict[str, Any]) -> None:
    response = http.get(f"/key-value-stores/{store['id']}/records")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/zip")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == []


def test_download_records_of_missing_store(http: httpx.Client) -> None:
    assert_error(http.get("/key-value-stores/NoSuchStoreId1234/records"), 404, "record-not-found")


# --- authentication, methods, routing


def test_no_token(server: Server) -> None:
    with server.anonymous() as anonymous:
        assert_error(anonymous.get("/key-value-stores"), 401, "token-not-provided")
        assert_error(
            anonymous.post("/key-value-stores", params={"name": unique()}), 401, "token-not-provided"
        )
        assert_error(anonymous.post("/key-value-stores"), 401, "token-not-provided")


def test_bad_token(server: Server) -> None:
    with server.client(token="apify_api_" + "x" * 36) as wrong:
        assert_error(wrong.get("/key-value-stores"), 401, "invalid-token")
        assert_error(wrong.post("/key-value-stores", params={"name": unique()}), 401, "invalid-token")


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
    name = unique()
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
