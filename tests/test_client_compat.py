"""Compatibility suite: the official Python `apify-client` (sync and async), unmodified, on a real server.

Every call goes through the real client over loopback, so what is checked here is exactly what a user of
the client sees: parsed models, parsed record values, `None` for missing resources and `ApifyApiError` for
refusals.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from apify_client import ApifyClient, ApifyClientAsync
from apify_client.errors import ApifyApiError

from tests.conftest import Server, every_engine

server = every_engine()


USERNAME = "admin"
STREAMING_WARNING = "ignore:Streaming a request body is experimental:UserWarning"


def unique(prefix: str) -> str:
    """A store name that no other test (or earlier run) uses: lowercase letters, digits and hyphens."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def binary_sorted(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: k.encode())


def make_client(server: Server) -> ApifyClient:
    return ApifyClient(token=server.token, api_url=server.base_url, api_public_url=server.base_url)


def make_async_client(server: Server) -> ApifyClientAsync:
    return ApifyClientAsync(token=server.token, api_url=server.base_url, api_public_url=server.base_url)


@pytest.fixture
def client(server: Server) -> Iterator[ApifyClient]:
    apify = make_client(server)
    yield apify
    apify.http_client.close()


def _assert_timestamps(store: Any) -> None:
    now = datetime.now(UTC)
    for stamp in (store.created_at, store.modified_at, store.accessed_at):
        assert isinstance(stamp, datetime)
        assert stamp.tzinfo is not None
        assert abs(now - stamp) < timedelta(minutes=5)
    assert store.modified_at >= store.created_at
    assert store.accessed_at >= store.created_at


def _put_many(server: Server, store_id: str, keys: list[str], *, concurrency: int = 16) -> None:
    """Write `keys` (value = the key itself, text/plain) through the async client, `concurrency` at a time."""

    async def run() -> None:
        apify = make_async_client(server)
        try:
            store = apify.key_value_store(store_id)
            gate = asyncio.Semaphore(concurrency)

            async def put(key: str) -> None:
                async with gate:
                    await store.set_record(key, key, content_type="text/plain")

            await asyncio.gather(*(put(k) for k in keys))
        finally:
            await apify.http_client.aclose()

    asyncio.run(run())


# --- Store collection ---


def test_get_or_create_named_is_idempotent(client: ApifyClient) -> None:
    name = unique("goc")
    first = client.key_value_stores().get_or_create(name=name)
    second = client.key_value_stores().get_or_create(name=name)
    assert first.id
    assert second.id == first.id
    assert first.name == second.name == name
    assert first.username == USERNAME
    assert first.user_id
    assert second.created_at == first.created_at
    _assert_timestamps(first)
    # A writer (the owner) gets the signing key, which the client needs for signed public URLs.
    assert first.url_signing_secret_key


def test_get_or_create_without_name_creates_unnamed_store(client: ApifyClient) -> None:
    one = client.key_value_stores().get_or_create()
    two = client.key_value_stores().get_or_create()
    assert one.name is None
    assert two.name is None
    assert one.id != two.id  # no name: every call creates a new store
    _assert_timestamps(one)
    fetched = client.key_value_store(one.id).get()
    assert fetched is not None
    assert fetched.id == one.id
    assert fetched.name is None


def test_get_or_create_with_schema(client: ApifyClient) -> None:
    schema = {
        "actorKeyValueStoreSchemaVersion": 1,
        "title": "Screenshots store",
        "collections": {
            "screenshots": {
                "title": "Screenshots",
                "contentTypes": ["image/png"],
                "keyPrefix": "screenshot-",
            }
        },
    }
    name = unique("schema")
    created = client.key_value_stores().get_or_create(name=name, schema=schema)
    assert created.name == name
    assert created.schema_ == schema
    fetched = client.key_value_store(created.id).get()
    assert fetched is not None
    assert fetched.schema_ == schema
    assert client.key_value_stores().get_or_create(name=name).id == created.id

    store = client.key_value_store(created.id)
    store.set_record("screenshot-1", b"\x89PNG-1", content_type="image/png")
    store.set_record("screenshot-2", b"\x89PNG-2", content_type="image/png")
    store.set_record("other", {"x": 1})
    assert [i.key for i in store.list_keys(collection="screenshots").items] == [
        "screenshot-1",
        "screenshot-2",
    ]
    assert [i.key for i in store.list_keys().items] == ["other", "screenshot-1", "screenshot-2"]


def test_list_and_iterate_named_and_unnamed(client: ApifyClient) -> None:
    named = client.key_value_stores().get_or_create(name=unique("listed"))
    unnamed = client.key_value_stores().get_or_create()

    default_page = client.key_value_stores().list()
    assert default_page.items
    assert all(s.name for s in default_page.items)  # unnamed stores are left out by default
    default_ids = {s.id for s in default_page.items}
    assert named.id in default_ids
    assert unnamed.id not in default_ids
    assert default_page.total == len(default_page.items)
    assert default_page.count == len(default_page.items)
    assert default_page.offset == 0
    assert not default_page.desc

    iterated = list(client.key_value_stores().iterate())
    assert [s.id for s in iterated] == [s.id for s in default_page.items]

    everything = client.key_value_stores().list(unnamed=True)
    all_ids = [s.id for s in everything.items]
    assert named.id in all_ids
    assert unnamed.id in all_ids
    assert everything.total == len(all_ids) > default_page.total
    assert len(set(all_ids)) == len(all_ids)
    assert [s.id for s in client.key_value_stores().iterate(unnamed=True)] == all_ids

    for listed in everything.items:
        _assert_timestamps(listed)
    listed_named = next(s for s in everything.items if s.id == named.id)
    assert listed_named.name == named.name
    assert listed_named.username == USERNAME
    assert listed_named.created_at == named.created_at


def test_list_limit_offset_and_iterate_chunks(client: ApifyClient) -> None:
    for _ in range(3):
        client.key_value_stores().get_or_create()
    all_ids = [s.id for s in client.key_value_stores().list(unnamed=True).items]
    assert len(all_ids) >= 3

    page = client.key_value_stores().list(unnamed=True, limit=2, offset=1)
    assert [s.id for s in page.items] == all_ids[1:3]
    assert page.count == 2
    assert page.limit == 2
    assert page.offset == 1
    assert page.total == len(all_ids)

    beyond = client.key_value_stores().list(unnamed=True, offset=len(all_ids))
    assert beyond.items == []
    assert beyond.count == 0
    assert beyond.total == len(all_ids)

    # iterate() pages with limit/offset itself: a chunk of 1 makes it walk every page.
    assert [s.id for s in client.key_value_stores().iterate(unnamed=True, chunk_size=1)] == all_ids
    assert [s.id for s in client.key_value_stores().iterate(unnamed=True, limit=3, chunk_size=2)] == all_ids[
        :3
    ]
    assert [s.id for s in client.key_value_stores().iterate(unnamed=True, offset=2)] == all_ids[2:]


def test_list_stores_limit_zero_means_api_default(client: ApifyClient) -> None:
    """The client sends `limit=0` for "no limit, let the API decide" (see `_next_page_limit` in the client's
    `_pagination.py`): `iterate()` without `chunk_size` does so on every page. The API must answer with a full
    default-sized page (up to 1000), not a page of one."""
    for _ in range(3):
        client.key_value_stores().get_or_create(name=unique("zero"))
    full = client.key_value_stores().list(unnamed=True)
    assert full.total <= 1000
    zero = client.key_value_stores().list(unnamed=True, limit=0)
    assert [s.id for s in zero.items] == [s.id for s in full.items]
    assert zero.count == full.total

    calls_before = client._statistics.calls
    iterated = [s.id for s in client.key_value_stores().iterate(unnamed=True)]
    assert iterated == [s.id for s in full.items]
    # One full page, then one empty page that ends the iteration - not one request per store.
    assert client._statistics.calls - calls_before <= 2


def test_list_keys_limit_zero_means_api_default(client: ApifyClient) -> None:
    """`list_keys(limit=0)` sends the 0 as it is; like the store list, it asks for the default page."""
    store = client.key_value_store(client.key_value_stores().get_or_create().id)
    for i in range(5):
        store.set_record(f"k{i}", i)
    keys_page = store.list_keys(limit=0)
    assert [i.key for i in keys_page.items] == [f"k{i}" for i in range(5)]
    assert keys_page.is_truncated is False
    assert keys_page.next_exclusive_start_key is None


def test_list_desc_reverses_order(client: ApifyClient) -> None:
    made = []
    for letter in "abc":
        made.append(client.key_value_stores().get_or_create(name=unique(f"desc-{letter}")).id)
        time.sleep(0.01)  # distinct creation times
    asc = [s.id for s in client.key_value_stores().list().items]
    desc_page = client.key_value_stores().list(desc=True)
    desc = [s.id for s in desc_page.items]
    assert desc_page.desc is True
    assert sorted(asc) == sorted(desc)
    assert [i for i in asc if i in made] == made
    assert [i for i in desc if i in made] == made[::-1]
    # desc with a limit returns the newest stores first.
    newest = client.key_value_stores().list(desc=True, limit=1)
    assert [s.id for s in newest.items] == [made[-1]]
    assert [s.id for s in client.key_value_stores().iterate(desc=True)] == desc


# --- Store object ---


def test_get_by_id_tilde_name_and_username_name(client: ApifyClient) -> None:
    name = unique("addr")
    info = client.key_value_stores().get_or_create(name=name)
    by_id = client.key_value_store(info.id).get()
    by_tilde = client.key_value_store(f"~{name}").get()
    by_user = client.key_value_store(f"{USERNAME}~{name}").get()
    for fetched in (by_id, by_tilde, by_user):
        assert fetched is not None
        assert fetched.id == info.id
        assert fetched.name == name
        assert fetched.username == USERNAME
    assert client.key_value_store(f"~{unique('absent')}").get() is None
    assert client.key_value_store("nOnExIsTeNtId1234").get() is None

    # Records through a name reference land in the same store.
    client.key_value_store(f"~{name}").set_record("via-name", {"n": 1})
    client.key_value_store(f"{USERNAME}~{name}").set_record("via-user", "u")
    assert client.key_value_store(info.id).get_record("via-name")["value"] == {"n": 1}  # type: ignore[index]
    assert client.key_value_store(f"~{name}").get_record("via-user")["value"] == "u"  # type: ignore[index]
    assert [i.key for i in client.key_value_store(f"{USERNAME}~{name}").list_keys().items] == [
        "via-name",
        "via-user",
    ]


def test_update_rename_and_conflict(client: ApifyClient) -> None:
    old_name = unique("before")
    info = client.key_value_stores().get_or_create(name=old_name)
    store = client.key_value_store(info.id)

    new_name = unique("after")
    updated = store.update(name=new_name)
    assert updated.id == info.id
    assert updated.name == new_name
    assert updated.created_at == info.created_at
    assert updated.modified_at >= info.modified_at
    assert client.key_value_store(f"~{new_name}").get().id == info.id  # type: ignore[union-attr]
    assert client.key_value_store(f"{USERNAME}~{new_name}").get().id == info.id  # type: ignore[union-attr]
    assert client.key_value_store(f"~{old_name}").get() is None
    fetched = store.get()
    assert fetched is not None
    assert fetched.name == new_name

    # Taking a name another store holds is a conflict, and changes nothing.
    other = client.key_value_stores().get_or_create(name=unique("other"))
    with pytest.raises(ApifyApiError) as conflict:
        client.key_value_store(other.id).update(name=new_name)
    assert conflict.value.status_code == 409
    assert client.key_value_store(other.id).get().name == other.name  # type: ignore[union-attr]
    with pytest.raises(ApifyApiError) as unnamed_conflict:
        client.key_value_store(client.key_value_stores().get_or_create().id).update(name=new_name)
    assert unnamed_conflict.value.status_code == 409

    # Other fields update too.
    shared = store.update(general_access="ANYONE_WITH_ID_CAN_READ")
    assert shared.general_access == "ANYONE_WITH_ID_CAN_READ"
    assert shared.name == new_name

    # The old name is free again.
    assert client.key_value_stores().get_or_create(name=old_name).id != info.id


def test_delete_store(client: ApifyClient) -> None:
    name = unique("doomed")
    info = client.key_value_stores().get_or_create(name=name)
    store = client.key_value_store(info.id)
    store.set_record("k", "v")
    store.delete()
    assert store.get() is None
    assert client.key_value_store(f"~{name}").get() is None
    assert store.get_record("k") is None
    assert store.record_exists("k") is False
    assert info.id not in {s.id for s in client.key_value_stores().iterate(unnamed=True)}
    store.delete()  # the client treats a 404 on delete as done
    recreated = client.key_value_stores().get_or_create(name=name)
    assert recreated.id != info.id
    assert recreated.name == name
    assert client.key_value_store(recreated.id).list_keys().items == []


# --- Records ---


def test_set_and_get_json_text_and_bytes(client: ApifyClient) -> None:
    store = client.key_value_store(client.key_value_stores().get_or_create().id)
    doc = {"a": 1, "b": [1, 2, None], "c": {"nested": "ünïcödé ☃"}, "d": True}
    store.set_record("json", doc)
    store.set_record("list", [1, "two", 3.5])
    store.set_record("text", "hello ☃")
    store.set_record("plain", "plain text", content_type="text/plain")
    store.set_record("html", "<p>hi</p>", content_type="text/html")
    store.set_record("xml", "<a>1</a>", content_type="application/xml")
    store.set_record("bytes", b"\x00\x01\x02\xff", content_type="application/octet-stream")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    store.set_record("image", png, content_type="image/png")
    store.set_record("raw-json-bytes", b'{"from": "bytes"}', content_type="application/json")

    record = store.get_record("json")
    assert record is not None
    assert record["key"] == "json"
    assert record["value"] == doc
    assert record["content_type"].startswith("application/json")
    assert store.get_record("list")["value"] == [1, "two", 3.5]  # type: ignore[index]

    text = store.get_record("text")
    assert text is not None
    assert text["value"] == "hello ☃"
    assert text["content_type"].startswith("text/plain")
    assert store.get_record("plain")["value"] == "plain text"  # type: ignore[index]
    html = store.get_record("html")
    assert html is not None
    assert html["value"] == "<p>hi</p>"
    assert html["content_type"].startswith("text/html")
    assert store.get_record("xml")["value"] == "<a>1</a>"  # type: ignore[index]

    raw = store.get_record("bytes")
    assert raw is not None
    assert raw["value"] == b"\x00\x01\x02\xff"
    assert raw["content_type"].startswith("application/octet-stream")
    image = store.get_record("image")
    assert image is not None
    assert image["value"] == png
    assert image["content_type"] == "image/png"
    assert store.get_record("raw-json-bytes")["value"] == {"from": "bytes"}  # type: ignore[index]

    # get_record_as_bytes never parses.
    as_bytes = store.get_record_as_bytes("json")
    assert as_bytes is not None
    assert json.loads(as_bytes["value"]) == doc
    assert as_bytes["content_type"].startswith("application/json")
    assert store.get_record_as_bytes("text")["value"] == "hello ☃".encode()  # type: ignore[index]
    assert store.get_record_as_bytes("image")["value"] == png  # type: ignore[index]

    # Overwriting replaces value and content type.
    store.set_record("json", "now text", content_type="text/plain")
    replaced = store.get_record("json")
    assert replaced is not None
    assert replaced["value"] == "now text"
    assert replaced["content_type"].startswith("text/plain")

    sizes = {i.key: i.size for i in store.list_keys().items}
    assert sizes["image"] == len(png)
    assert sizes["bytes"] == 4
    assert sizes["text"] == len("hello ☃".encode())


@pytest.mark.filterwarnings(STREAMING_WARNING)
def test_set_record_from_streams(client: ApifyClient, tmp_path: Path) -> None:
    store = client.key_value_store(client.key_value_stores().get_or_create().id)
    body = bytes(range(256)) * 200  # 50 KiB
    path = tmp_path / "upload.bin"
    path.write_bytes(body)
    with path.open("rb") as f:
        store.set_record("file", f, content_type="application/octet-stream")
    with path.open("rb") as f:
        store.set_record("file-default-type", f)
    store.set_record("bytesio", io.BytesIO(b"in memory"), content_type="application/octet-stream")
    store.set_record("png-stream", io.BytesIO(b"\x89PNG\r\n\x1a\n" + body[:1000]), content_type="image/png")
    text_path = tmp_path / "notes.txt"
    text_path.write_text("line one\nline two ☃\n", encoding="utf-8")
    with text_path.open(encoding="utf-8") as f:
        store.set_record("text-file", f)

    assert store.get_record("file")["value"] == body  # type: ignore[index]
    default_type = store.get_record("file-default-type")
    assert default_type is not None
    assert default_type["value"] == body
    assert default_type["content_type"].startswith("application/octet-stream")
    assert store.get_record_as_bytes("bytesio")["value"] == b"in memory"  # type: ignore[index]
    png = store.get_record("png-stream")
    assert png is not None
    assert png["value"] == b"\x89PNG\r\n\x1a\n" + body[:1000]
    assert png["content_type"] == "image/png"
    text = store.get_record("text-file")
    assert text is not None
    assert text["value"] == "line one\nline two ☃\n"
    assert text["content_type"].startswith("text/plain")
    sizes = {i.key: i.size for i in store.list_keys().items}
    assert sizes["file"] == len(body)
    assert sizes["bytesio"] == len(b"in memory")


def test_large_bodies_are_gzipped_by_the_client(client: ApifyClient) -> None:
    store = client.key_value_store(client.key_value_stores().get_or_create().id)
    big_dict = {"rows": [{"id": i, "name": f"row number {i}", "ok": True} for i in range(400)]}
    big_text = "The quick brown fox jumps over the lazy dog. " * 200
    raw_dict_size = len(json.dumps(big_dict, ensure_ascii=False).encode())
    raw_text_size = len(big_text.encode())
    assert raw_dict_size > 1024
    assert raw_text_size > 1024

    store.set_record("big-dict", big_dict)
    store.set_record("big-text", big_text)

    got_dict = store.get_record("big-dict")
    assert got_dict is not None
    assert got_dict["value"] == big_dict
    assert got_dict["content_type"].startswith("application/json")
    got_text = store.get_record("big-text")
    assert got_text is not None
    assert got_text["value"] == big_text
    assert store.get_record_as_bytes("big-text")["value"] == big_text.encode()  # type: ignore[index]
    with store.stream_record("big-dict") as streamed:
        assert streamed is not None
        assert json.loads(b"".join(streamed["value"].iter_bytes())) == big_dict

    sizes = {i.key: i.size for i in store.list_keys().items}
    # Stored as the client sent it: gzip-compressed, so much smaller than the raw body.
    assert 0 < sizes["big-dict"] < raw_dict_size
    assert 0 < sizes["big-text"] < raw_text_size


def test_stream_record(client: ApifyClient) -> None:
    store = client.key_value_store(client.key_value_stores().get_or_create().id)
    body = bytes(range(256)) * 4096  # 1 MiB, incompressible-ish as image/png is never gzipped by the client
    store.set_record("blob", body, content_type="image/png")
    with store.stream_record("blob") as streamed:
        assert streamed is not None
        assert streamed["key"] == "blob"
        assert streamed["content_type"] == "image/png"
        received = b"".join(streamed["value"].iter_bytes())
    assert received == body
    store.set_record("small", {"s": 1})
    with store.stream_record("small") as small:
        assert small is not None
        assert small["content_type"].startswith("application/json")
        assert json.loads(small["value"].read()) == {"s": 1}
    with store.stream_record("missing") as missing:
        assert missing is None


def test_record_exists_missing_records_and_stores(client: ApifyClient) -> None:
    store = client.key_value_store(client.key_value_stores().get_or_create().id)
    store.set_record("here", "yes")
    assert store.record_exists("here") is True
    assert store.record_exists("not-here") is False
    assert store.get_record("not-here") is None
    assert store.get_record_as_bytes("not-here") is None

    ghost = client.key_value_store("nOnExIsTeNtId1234")
    assert ghost.get_record("here") is None
    assert ghost.get_record_as_bytes("here") is None
    assert ghost.record_exists("here") is False
    with ghost.stream_record("here") as streamed:
        assert streamed is None
    assert client.key_value_store(f"~{unique('nobody')}").get_record("here") is None


def test_delete_record(client: ApifyClient) -> None:
    store = client.key_value_store(client.key_value_stores().get_or_create().id)
    store.set_record("a", 1)
    store.set_record("b", 2)
    assert store.record_exists("a") is True
    store.delete_record("a")
    assert store.record_exists("a") is False
    assert store.get_record("a") is None
    assert [i.key for i in store.list_keys().items] == ["b"]
    assert store.get_record("b")["value"] == 2  # type: ignore[index]
    store.set_record("a", "again")
    assert store.get_record("a")["value"] == "again"  # type: ignore[index]


def test_keys_with_every_allowed_character(client: ApifyClient) -> None:
    store = client.key_value_store(client.key_value_stores().get_or_create().id)
    keys = ["it's", "(paren)", "bang!", "dots.and-dashes_", "UPPER", "lower", "0digits9", "x" * 256]
    for key in keys:
        store.set_record(key, {"key": key})
    for key in keys:
        assert store.get_record(key)["value"] == {"key": key}  # type: ignore[index]
        assert store.record_exists(key) is True
    assert [i.key for i in store.list_keys().items] == binary_sorted(keys)
    with pytest.raises(ApifyApiError) as bad:
        store.set_record("bad key", "x")
    assert bad.value.status_code == 400
    with pytest.raises(ApifyApiError) as too_long:
        store.set_record("x" * 257, "x")
    assert too_long.value.status_code == 400


# --- Listing keys ---


def test_list_keys_prefix_limit_exclusive_start_key(client: ApifyClient, server: Server) -> None:
    info = client.key_value_stores().get_or_create()
    store = client.key_value_store(info.id)
    keys = [f"a-{i}" for i in range(5)] + [f"b-{i}" for i in range(5)] + ["B-upper", "_under"]
    for key in keys:
        store.set_record(key, key, content_type="text/plain")

    full = store.list_keys()
    assert [i.key for i in full.items] == binary_sorted(keys)
    assert full.count == len(keys)
    assert full.is_truncated is False
    assert full.next_exclusive_start_key is None
    for item in full.items:
        assert item.size == len(item.key)
        url = str(item.record_public_url)
        assert url.startswith(f"{server.base_url}/v2/key-value-stores/{info.id}/records/{item.key}")

    prefixed = store.list_keys(prefix="b-")
    assert [i.key for i in prefixed.items] == [f"b-{i}" for i in range(5)]
    assert prefixed.is_truncated is False

    first = store.list_keys(limit=3)
    assert [i.key for i in first.items] == binary_sorted(keys)[:3]
    assert first.count == 3
    assert first.limit == 3
    assert first.is_truncated is True
    assert first.next_exclusive_start_key == first.items[-1].key

    second = store.list_keys(limit=3, exclusive_start_key=first.next_exclusive_start_key)
    assert [i.key for i in second.items] == binary_sorted(keys)[3:6]
    assert second.exclusive_start_key == first.next_exclusive_start_key

    after_a2 = store.list_keys(exclusive_start_key="a-2", prefix="a-")
    assert [i.key for i in after_a2.items] == ["a-3", "a-4"]
    # A start key that is not itself stored still works: everything strictly after it.
    assert [i.key for i in store.list_keys(exclusive_start_key="a-2x", prefix="a-").items] == ["a-3", "a-4"]

    prefixed_page = store.list_keys(prefix="a-", limit=2, exclusive_start_key="a-0")
    assert [i.key for i in prefixed_page.items] == ["a-1", "a-2"]
    assert prefixed_page.is_truncated is True

    # Exactly `limit` keys left: the page is complete, not truncated.
    exact = store.list_keys(prefix="b-", limit=5)
    assert exact.count == 5
    assert exact.is_truncated is False
    assert exact.next_exclusive_start_key is None

    assert store.list_keys(prefix="zzz").items == []
    last = binary_sorted(keys)[-1]
    tail = store.list_keys(exclusive_start_key=last)
    assert tail.items == []
    assert tail.is_truncated is False


def test_iterate_keys_over_2500(client: ApifyClient, server: Server) -> None:
    info = client.key_value_stores().get_or_create()
    store = client.key_value_store(info.id)
    # Mixed case and punctuation so binary order differs from any case-folded or locale order.
    keys = (
        [f"item-{i:04d}" for i in range(1200)]
        + [f"Item-{i:04d}" for i in range(600)]
        + [f"_x{i}" for i in range(300)]
        + [f"(p){i}" for i in range(200)]
        + [f"z.{i}" for i in range(200)]
    )
    assert len(keys) == len(set(keys)) == 2500
    _put_many(server, info.id, keys)

    expected = binary_sorted(keys)
    items = list(store.iterate_keys())
    listed = [i.key for i in items]
    assert len(listed) == 2500
    assert len(set(listed)) == 2500
    assert listed == expected
    record_base = f"{server.base_url}/v2/key-value-stores/{info.id}/records/"
    assert all(str(i.record_public_url).startswith(record_base) for i in items)
    assert all(i.size == len(i.key) for i in items)

    assert [i.key for i in store.iterate_keys(chunk_size=333)] == expected
    assert [i.key for i in store.iterate_keys(limit=1500, chunk_size=400)] == expected[:1500]
    assert [i.key for i in store.iterate_keys(exclusive_start_key=expected[999])] == expected[1000:]

    prefixed = [i.key for i in store.iterate_keys(prefix="item-", chunk_size=500)]
    assert prefixed == [f"item-{i:04d}" for i in range(1200)]
    assert [i.key for i in store.iterate_keys(prefix="Item-")] == [f"Item-{i:04d}" for i in range(600)]

    # The server caps a page at 1000 keys.
    page = store.list_keys()
    assert page.count == 1000
    assert page.is_truncated is True
    assert page.next_exclusive_start_key == expected[999]


# --- Public URLs ---


def test_record_public_url(client: ApifyClient, server: Server) -> None:
    info = client.key_value_stores().get_or_create()
    store = client.key_value_store(info.id)
    store.set_record("shared", {"ok": True})
    url = store.get_record_public_url("shared")
    assert url.startswith(server.base_url)
    parsed = urlparse(url)
    assert parsed.path == f"/v2/key-value-stores/{info.id}/records/shared"
    assert "/records/shared" in url
    signature = parse_qs(parsed.query)["signature"]
    assert len(signature) == 1
    assert signature[0]
    auth = {"authorization": f"Bearer {server.token}"}
    response = httpx.get(url, headers=auth)
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert response.headers["content-type"].startswith("application/json")
    # The listing hands out the same URL for the key.
    listed = store.list_keys().items[0]
    assert str(listed.record_public_url) == url


def test_keys_public_url(client: ApifyClient, server: Server) -> None:
    info = client.key_value_stores().get_or_create()
    store = client.key_value_store(info.id)
    for key in ("k1", "k2", "other"):
        store.set_record(key, key)
    url = store.create_keys_public_url()
    assert url.startswith(server.base_url)
    parsed = urlparse(url)
    assert parsed.path == f"/v2/key-value-stores/{info.id}/keys"
    assert "/keys" in url
    assert "signature=" in url
    assert parse_qs(parsed.query)["signature"][0]

    auth = {"authorization": f"Bearer {server.token}"}
    data = httpx.get(url, headers=auth).json()["data"]
    assert [i["key"] for i in data["items"]] == ["k1", "k2", "other"]

    filtered = store.create_keys_public_url(prefix="k", limit=1, expires_in=timedelta(minutes=5))
    query = parse_qs(urlparse(filtered).query)
    assert query["prefix"] == ["k"]
    assert query["limit"] == ["1"]
    assert query["signature"][0]
    filtered_data = httpx.get(filtered, headers=auth).json()["data"]
    assert [i["key"] for i in filtered_data["items"]] == ["k1"]
    assert filtered_data["isTruncated"] is True


# --- Stats ---


def test_stats_count_operations(client: ApifyClient) -> None:
    info = client.key_value_stores().get_or_create()
    assert info.stats is not None
    assert info.stats.read_count == 0
    assert info.stats.write_count == 0
    assert info.stats.delete_count == 0
    assert info.stats.list_count == 0
    assert info.stats.storage_bytes == 0
    store = client.key_value_store(info.id)
    store.set_record("a", "12345", content_type="text/plain")
    store.set_record("b", "xyz", content_type="text/plain")
    store.set_record("c", b"\x00" * 10, content_type="application/octet-stream")
    store.get_record("a")
    store.get_record("c")
    store.delete_record("b")
    listed = store.list_keys()
    assert {i.key: i.size for i in listed.items} == {"a": 5, "c": 10}

    deadline = time.monotonic() + 3
    while True:
        fetched = store.get()
        assert fetched is not None
        stats = fetched.stats
        assert stats is not None
        settled = stats.read_count == 2 and stats.list_count == 1
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert stats.write_count == 3
    assert stats.delete_count == 1
    assert stats.read_count == 2
    assert stats.list_count == 1
    assert stats.storage_bytes == 15
    assert fetched.modified_at >= info.modified_at


# --- Async client ---


def test_async_client_store_lifecycle(server: Server) -> None:
    async def scenario() -> None:
        apify = make_async_client(server)
        try:
            name = unique("async")
            info = await apify.key_value_stores().get_or_create(name=name)
            again = await apify.key_value_stores().get_or_create(name=name)
            assert again.id == info.id
            assert info.name == name
            _assert_timestamps(info)
            unnamed = await apify.key_value_stores().get_or_create()
            assert unnamed.name is None

            listed = await apify.key_value_stores().list()
            assert info.id in {s.id for s in listed.items}
            assert unnamed.id not in {s.id for s in listed.items}
            iterated = [s.id async for s in apify.key_value_stores().iterate(unnamed=True)]
            assert {info.id, unnamed.id} <= set(iterated)

            by_name = await apify.key_value_store(f"~{name}").get()
            assert by_name is not None
            assert by_name.id == info.id
            by_user = await apify.key_value_store(f"{USERNAME}~{name}").get()
            assert by_user is not None
            assert by_user.id == info.id

            renamed = unique("async-renamed")
            assert (await apify.key_value_store(info.id).update(name=renamed)).name == renamed
            with pytest.raises(ApifyApiError) as conflict:
                await apify.key_value_store(unnamed.id).update(name=renamed)
            assert conflict.value.status_code == 409

            await apify.key_value_store(info.id).delete()
            assert await apify.key_value_store(info.id).get() is None
            assert await apify.key_value_store(f"~{renamed}").get() is None
            assert await apify.key_value_store(info.id).get_record("x") is None
        finally:
            await apify.http_client.aclose()

    asyncio.run(scenario())


def test_async_client_records(server: Server) -> None:
    async def scenario() -> None:
        apify = make_async_client(server)
        try:
            info = await apify.key_value_stores().get_or_create(name=unique("async-rec"))
            store = apify.key_value_store(info.id)
            gate = asyncio.Semaphore(16)

            async def put(i: int) -> None:
                async with gate:
                    await store.set_record(f"k{i:04d}", {"i": i})

            await asyncio.gather(*(put(i) for i in range(1200)))
            await store.set_record("text", "async ☃")
            await store.set_record("bin", b"\x00\xff", content_type="application/octet-stream")
            big = {"blob": "abc" * 1000}
            await store.set_record("big", big)

            record = await store.get_record("k0007")
            assert record is not None
            assert record["value"] == {"i": 7}
            assert record["content_type"].startswith("application/json")
            text = await store.get_record("text")
            assert text is not None
            assert text["value"] == "async ☃"
            assert text["content_type"].startswith("text/plain")
            assert (await store.get_record("bin"))["value"] == b"\x00\xff"  # type: ignore[index]
            assert (await store.get_record("big"))["value"] == big  # type: ignore[index]
            assert (await store.get_record_as_bytes("text"))["value"] == "async ☃".encode()  # type: ignore[index]
            async with store.stream_record("k0042") as streamed:
                assert streamed is not None
                chunks = [c async for c in streamed["value"].aiter_bytes()]
            assert json.loads(b"".join(chunks)) == {"i": 42}
            assert await store.get_record("missing") is None

            assert await store.record_exists("k0001") is True
            assert await store.record_exists("missing") is False

            page = await store.list_keys(limit=10, prefix="k")
            assert [i.key for i in page.items] == [f"k{i:04d}" for i in range(10)]
            assert page.is_truncated is True
            assert page.next_exclusive_start_key == "k0009"
            following = await store.list_keys(limit=5, exclusive_start_key="k0009")
            assert [i.key for i in following.items] == [f"k{i:04d}" for i in range(10, 15)]

            expected = binary_sorted([f"k{i:04d}" for i in range(1200)] + ["text", "bin", "big"])
            all_keys = [i.key async for i in store.iterate_keys()]
            assert all_keys == expected
            assert [i.key async for i in store.iterate_keys(chunk_size=250, prefix="k")] == [
                f"k{i:04d}" for i in range(1200)
            ]
            assert [i.key async for i in store.iterate_keys(limit=7)] == expected[:7]

            sizes = {i.key: i.size async for i in store.iterate_keys(prefix="b")}
            assert sizes["bin"] == 2
            assert sizes["big"] < len(json.dumps(big))

            await store.delete_record("k0001")
            assert await store.record_exists("k0001") is False
            assert await store.get_record("k0001") is None
            assert "k0001" not in [i.key async for i in store.iterate_keys(prefix="k000")]

            url = await store.get_record_public_url("k0002")
            assert url.startswith(f"{server.base_url}/v2/key-value-stores/{info.id}/records/k0002?")
            assert "signature=" in url
            keys_url = await store.create_keys_public_url()
            assert "/keys" in keys_url
            assert "signature=" in keys_url

            await store.delete()
            assert await store.get() is None
            assert await store.record_exists("k0002") is False
        finally:
            await apify.http_client.aclose()

    asyncio.run(scenario())
