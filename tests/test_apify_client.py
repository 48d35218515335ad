"""The official Python apify-client 3.4, sync and async, against a real server: every key-value store call."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from apify_client import ApifyClient, ApifyClientAsync
from apify_client.errors import ApifyApiError

from tests.conftest import Server, every_engine

server = every_engine()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(server: Server) -> ApifyClient:
    return ApifyClient(token=server.token, api_url=server.base_url, api_public_url=server.base_url)


def test_get_or_create_list_update_delete(client: ApifyClient) -> None:
    name = unique("store")
    first = client.key_value_stores().get_or_create(name=name)
    again = client.key_value_stores().get_or_create(name=name)
    assert again.id == first.id
    assert first.name == name
    assert first.username == "admin"
    assert first.created_at.tzinfo is not None
    unnamed = client.key_value_stores().get_or_create()
    assert unnamed.name is None
    with_schema = client.key_value_stores().get_or_create(
        name=unique("schema"), schema={"actorKeyValueStoreSchemaVersion": 1, "collections": {}}
    )
    assert with_schema.id

    named_ids = {s.id for s in client.key_value_stores().iterate()}
    assert first.id in named_ids
    assert unnamed.id not in named_ids
    all_ids = {s.id for s in client.key_value_stores().iterate(unnamed=True)}
    assert {first.id, unnamed.id} <= all_ids
    page = client.key_value_stores().list(unnamed=True, limit=1, offset=0, desc=True)
    assert page.count == 1
    assert page.limit == 1
    assert page.total >= 2
    assert page.desc is True

    store = client.key_value_store(first.id)
    fetched = store.get()
    assert fetched is not None
    assert fetched.id == first.id
    assert client.key_value_store(f"~{name}").get().id == first.id  # type: ignore[union-attr]
    assert client.key_value_store(f"admin~{name}").get().id == first.id  # type: ignore[union-attr]
    assert client.key_value_store(f"admin/{name}").get().id == first.id  # type: ignore[union-attr]

    renamed = unique("renamed")
    assert store.update(name=renamed).name == renamed
    with pytest.raises(ApifyApiError) as taken:
        client.key_value_store(unnamed.id).update(name=renamed)
    assert taken.value.status_code == 409
    assert taken.value.type == "name-not-unique"

    store.delete()
    assert store.get() is None
    assert client.key_value_store("nonexistent-id-xx").get() is None


@pytest.mark.filterwarnings("ignore:Streaming a request body is experimental:UserWarning")
def test_records_of_every_kind(client: ApifyClient, tmp_path: Any) -> None:
    info = client.key_value_stores().get_or_create()
    store = client.key_value_store(info.id)
    big_text = "lorem ipsum " * 2000  # > 1 KiB: the client gzips it itself

    store.set_record("json", {"a": 1, "b": [1, 2]})
    store.set_record("text", "hello", content_type="text/plain")
    store.set_record("bytes", b"\x00\x01\x02", content_type="application/octet-stream")
    store.set_record("png", b"\x89PNG\r\n\x1a\n" + bytes(2000), content_type="image/png")
    store.set_record("big", big_text, content_type="text/plain")
    store.set_record("big-json", {"items": list(range(2000))})
    path = tmp_path / "file.bin"
    path.write_bytes(b"file-body" * 1000)
    with path.open("rb") as f:
        store.set_record("file", f, content_type="application/octet-stream")
    store.set_record("bytesio", io.BytesIO(b"from memory"), content_type="application/octet-stream")

    assert store.get_record("json") == {
        "key": "json",
        "value": {"a": 1, "b": [1, 2]},
        "content_type": "application/json; charset=utf-8",
    }
    text = store.get_record("text")
    assert text is not None
    assert text["value"] == "hello"
    assert text["content_type"].startswith("text/plain")
    assert store.get_record("bytes")["value"] == b"\x00\x01\x02"  # type: ignore[index]
    assert store.get_record("big")["value"] == big_text  # type: ignore[index]
    assert store.get_record("big-json")["value"] == {"items": list(range(2000))}  # type: ignore[index]
    assert store.get_record("file")["value"] == b"file-body" * 1000  # type: ignore[index]
    assert store.get_record_as_bytes("bytesio")["value"] == b"from memory"  # type: ignore[index]
    assert store.get_record_as_bytes("png")["value"][:4] == b"\x89PNG"  # type: ignore[index]
    with store.stream_record("big") as streamed:
        assert streamed is not None
        assert streamed["value"].content.decode() == big_text
    assert store.get_record("missing") is None
    assert client.key_value_store("nonexistent-id-xx").get_record("x") is None

    assert store.record_exists("json") is True
    assert store.record_exists("missing") is False
    store.delete_record("json")
    assert store.record_exists("json") is False

    sizes = {item.key: item.size for item in store.list_keys().items}
    assert sizes["big"] < len(big_text)  # stored as the client compressed it
    assert sizes["text"] == 5


def test_keys_pagination_over_2500(client: ApifyClient) -> None:
    info = client.key_value_stores().get_or_create()
    store = client.key_value_store(info.id)
    keys = [f"{p}-{i:05d}" for p in ("a", "B", "c") for i in range(834)][:2500]

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.set_record(k, k, content_type="text/plain"), keys))

    listed = [item.key for item in store.iterate_keys()]
    assert listed == sorted(keys, key=lambda k: k.encode())
    assert [item.key for item in store.iterate_keys(prefix="c-")] == sorted(
        k for k in keys if k.startswith("c-")
    )
    assert len(list(store.iterate_keys(limit=1500, chunk_size=200))) == 1500

    page = store.list_keys(limit=100, prefix="a-")
    assert page.count == 100
    assert page.is_truncated is True
    assert page.next_exclusive_start_key == "a-00099"
    assert str(page.items[0].record_public_url).startswith(client.key_value_store(info.id)._base_url)
    following = store.list_keys(limit=100, prefix="a-", exclusive_start_key=page.next_exclusive_start_key)
    assert following.items[0].key == "a-00100"
    assert following.exclusive_start_key == "a-00099"


def test_public_urls_work_without_a_token(client: ApifyClient, server: Server) -> None:
    info = client.key_value_stores().get_or_create()
    store = client.key_value_store(info.id)
    store.set_record("shared", {"ok": True})
    record_url = store.get_record_public_url("shared")
    assert record_url.startswith(f"{server.base_url}/v2/key-value-stores/{info.id}/records/shared?signature=")
    assert httpx.get(record_url).json() == {"ok": True}
    keys_url = store.create_keys_public_url()
    assert httpx.get(keys_url).json()["data"]["items"][0]["key"] == "shared"
    forged = record_url.rsplit("=", 1)[0] + "=forged"
    assert httpx.get(forged).status_code == 404  # a signature granting nothing counts as none


def test_stats_follow_operations(client: ApifyClient) -> None:
    info = client.key_value_stores().get_or_create()
    store = client.key_value_store(info.id)
    store.set_record("a", "12345", content_type="text/plain")
    store.set_record("b", "xyz", content_type="text/plain")
    store.get_record("a")
    store.list_keys()
    store.delete_record("b")
    deadline = time.monotonic() + 3
    while True:
        stats = store.get().stats  # type: ignore[union-attr]
        assert stats is not None
        if (stats.read_count == 1 and stats.list_count == 1) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (stats.write_count, stats.delete_count, stats.read_count, stats.list_count) == (2, 1, 1, 1)
    assert stats.storage_bytes == 5


def test_async_client(server: Server) -> None:
    async def scenario() -> None:
        client = ApifyClientAsync(token=server.token, api_url=server.base_url, api_public_url=server.base_url)
        name = unique("async")
        info = await client.key_value_stores().get_or_create(name=name)
        assert (await client.key_value_stores().get_or_create(name=name)).id == info.id
        store = client.key_value_store(info.id)
        await asyncio.gather(*(store.set_record(f"k{i:03d}", {"i": i}) for i in range(50)))
        await store.set_record("big", "x" * 5000, content_type="text/plain")
        assert (await store.get_record("k007"))["value"] == {"i": 7}  # type: ignore[index]
        assert (await store.get_record_as_bytes("big"))["value"] == b"x" * 5000  # type: ignore[index]
        assert await store.record_exists("k001") is True
        page = await store.list_keys(limit=10)
        assert page.count == 10
        assert page.is_truncated is True
        assert len([k async for k in store.iterate_keys(chunk_size=7)]) == 51
        await store.delete_record("k001")
        assert await store.record_exists("k001") is False
        assert await store.get_record("k001") is None
        listed = await client.key_value_stores().list()
        assert info.id in {s.id for s in listed.items}
        renamed = unique("async-renamed")
        assert (await store.update(name=renamed)).name == renamed
        assert (await client.key_value_store(f"~{renamed}").get()).id == info.id  # type: ignore[union-attr]
        await store.delete()
        assert await store.get() is None

    asyncio.run(scenario())
