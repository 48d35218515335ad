"""The official Python apify-client 3.4 on datasets, against real servers on every engine: every call, with
every parameter, as the client sends it and reads the answers (its pydantic models validate them)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import orjson
import pytest
from apify_client import ApifyClient, ApifyClientAsync
from apify_client.errors import ApifyApiError

from tests.conftest import Server, every_engine

server = every_engine()
SDK_ACTOR = Path(__file__).parent / "sdk" / "actor_dataset.py"


def unique(prefix: str = "ds") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(server: Server) -> ApifyClient:
    return ApifyClient(token=server.token, api_url=server.base_url, api_public_url=server.base_url)


def test_collection_get_update_delete(client: ApifyClient) -> None:
    name = unique()
    first = client.datasets().get_or_create(name=name)
    assert client.datasets().get_or_create(name=name).id == first.id
    assert str(first.console_url).endswith(f"/console/datasets/{first.id}")
    unnamed = client.datasets().get_or_create()
    assert unnamed.name is None
    schema = {"actorSpecification": 1, "fields": {"type": "object"}}  # the client strips empty dicts
    assert client.datasets().get_or_create(name=unique(), schema=schema).schema_ == schema
    assert first.id in {d.id for d in client.datasets().iterate()}
    listed = {d.id: d for d in client.datasets().iterate(unnamed=True)}
    assert listed[unnamed.id].name == ""  # the list model requires a string
    page = client.datasets().list(unnamed=True, limit=1, offset=0, desc=True, ownership="ownedByMe")
    assert (page.count, page.limit, page.desc) == (1, 1, True)

    dataset = client.dataset(first.id)
    fetched = dataset.get()
    assert fetched is not None
    assert fetched.item_count == 0
    assert fetched.created_at.tzinfo is not None
    renamed = unique()
    updated = dataset.update(name=renamed, title="Results", general_access="ANYONE_WITH_ID_CAN_READ")
    # The client's model has no `title` field: it is kept among the extra fields.
    assert (updated.name, getattr(updated, "title", None)) == (renamed, "Results")
    assert client.dataset(f"admin/{renamed}").get() is not None  # the client turns / into ~
    dataset.delete()
    assert dataset.get() is None
    dataset.delete()  # a 404 the client swallows


def test_items_refused_by_the_schema_are_raised_with_their_details(client: ApifyClient) -> None:
    fields = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    dataset = client.dataset(client.datasets().get_or_create(name=unique(), schema={"fields": fields}).id)
    dataset.push_items([{"title": "kept"}])
    with pytest.raises(ApifyApiError) as raised:
        dataset.push_items([{"title": "fine"}, {"title": 3}])
    error = raised.value
    assert (error.status_code, error.type) == (400, "schema-validation-error")
    data: dict[str, Any] = dict(error.data)  # the client types it as strings; it is the JSON as sent
    (invalid,) = data["invalidItems"]
    assert invalid["itemPosition"] == 1
    assert [(e["instancePath"], e["keyword"]) for e in invalid["validationErrors"]] == [("/title", "type")]
    assert [item["title"] for item in dataset.list_items().items] == ["kept"]


def test_push_and_list_items_with_every_parameter(client: ApifyClient) -> None:
    dataset = client.dataset(client.datasets().get_or_create().id)
    dataset.push_items({"n": 0, "#debug": 1})
    dataset.push_items([{"n": 1, "tags": [{"t": "a"}, {"t": "b"}], "deep": {"x": {"y": 1}}}, {"#only": True}])
    dataset.push_items('[{"n": 3}]')  # a JSON string goes through as it is
    info = dataset.get()
    assert info is not None
    assert (info.item_count, info.clean_item_count) == (4, 3)

    page = dataset.list_items()
    assert (page.total, page.offset, page.count, page.limit, page.desc) == (4, 0, 4, 999999999999, False)
    assert [item.get("n") for item in page.items] == [0, 1, None, 3]
    page = dataset.list_items(offset=1, limit=2, desc=True)
    assert [item.get("n") for item in page.items] == [None, 1]
    assert page.desc is True
    page = dataset.list_items(clean=True)
    assert page.items == [
        {"n": 0},
        {"n": 1, "tags": [{"t": "a"}, {"t": "b"}], "deep": {"x": {"y": 1}}},
        {"n": 3},
    ]
    assert page.count == 4
    page = dataset.list_items(fields=["deep", "n"], limit=2, offset=1)
    assert [list(item) for item in page.items] == [["deep", "n"], []]
    page = dataset.list_items(omit=["tags", "deep"], skip_hidden=True, skip_empty=True)
    assert page.items == [{"n": 0}, {"n": 1}, {"n": 3}]
    page = dataset.list_items(unwind=["tags"], fields=["n", "tags"], offset=1, limit=1)
    assert page.items == [{"n": 1, "t": "a"}, {"n": 1, "t": "b"}]
    assert page.count == 2  # max(rows scanned, items returned), as the client computes it
    page = dataset.list_items(flatten=["deep"], fields=["deep"], offset=1, limit=1)
    assert page.items == [{"deep.x.y": 1}]
    # The SDK's get_data(): "no limit" as a number.
    page = dataset.list_items(offset=0, limit=999999999999, desc=False, clean=False, skip_empty=False)
    assert len(page.items) == 4
    assert dataset.get_statistics().field_statistics is None


def test_iterate_items_across_filtered_pages(client: ApifyClient) -> None:
    dataset = client.dataset(client.datasets().get_or_create().id)
    # Pages of 3 rows; the second page is hidden fields only, which clean drops entirely.
    rows = [{"i": 0}, {"i": 1}, {"i": 2}, {"#h": 3}, {"#h": 4}, {"#h": 5}, {"i": 6}, {"i": 7}]
    dataset.push_items(rows)
    assert [item["i"] for item in dataset.iterate_items(clean=True, chunk_size=3)] == [0, 1, 2, 6, 7]
    assert len(list(dataset.iterate_items(chunk_size=3))) == 8
    assert [item["i"] for item in dataset.iterate_items(clean=True, chunk_size=3, limit=7)] == [0, 1, 2, 6]
    assert [item["i"] for item in dataset.iterate_items(offset=6, desc=True)] == [1, 0]


def test_items_as_bytes_in_every_format(client: ApifyClient) -> None:
    dataset = client.dataset(client.datasets().get_or_create(name=unique()).id)
    dataset.push_items([{"name": "a", "address": {"city": "X"}}, {"name": "b;c", "#h": 1}])
    as_json = orjson.loads(dataset.get_items_as_bytes())
    assert as_json[0]["address"] == {"city": "X"}
    lines = dataset.get_items_as_bytes(item_format="jsonl").splitlines()
    assert [orjson.loads(line)["name"] for line in lines] == ["a", "b;c"]
    raw_csv = dataset.get_items_as_bytes(item_format="csv", clean=True, bom=False, delimiter=";")
    assert list(csv.reader(io.StringIO(raw_csv.decode()), delimiter=";")) == [
        ["name", "address/city"], ["a", "X"], ["b;c", ""],
    ]  # fmt: skip
    headerless = dataset.get_items_as_bytes(
        item_format="csv", skip_header_row=True, bom=True, fields=["name"]
    )
    assert headerless.decode("utf-8-sig").splitlines() == ["a", "b;c"]
    assert headerless.startswith(b"\xef\xbb\xbf")
    sheet = openpyxl.load_workbook(io.BytesIO(dataset.get_items_as_bytes(item_format="xlsx"))).active
    assert sheet is not None
    assert next(sheet.iter_rows(values_only=True))[:2] == ("name", "address/city")
    assert b"<td>b;c</td>" in dataset.get_items_as_bytes(item_format="html")
    root = ET.fromstring(
        dataset.get_items_as_bytes(item_format="xml", xml_root="r", xml_row="row", omit=["#h"])
    )
    assert [row.findtext("name") for row in root.findall("row")] == ["a", "b;c"]
    rss = ET.fromstring(dataset.get_items_as_bytes(item_format="rss", attachment=True))
    channel = rss.find("channel")
    assert channel is not None
    assert len(channel.findall("item")) == 2
    with dataset.stream_items(item_format="jsonl", limit=1) as response:
        assert b"".join(response.iter_bytes()).count(b"\n") == 1


def test_public_url_signed_and_expiring(client: ApifyClient, server: Server) -> None:
    dataset = client.dataset(client.datasets().get_or_create().id)
    dataset.push_items([{"a": 1}, {"a": 2}])
    url = dataset.create_items_public_url(limit=1)
    assert "signature=" in url
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.json() == [{"a": 1}]
    expiring = dataset.create_items_public_url(item_format="csv", expires_in=timedelta(minutes=5))
    assert httpx.get(expiring).text.splitlines()[-1] == "2"
    expired = dataset.create_items_public_url(expires_in=timedelta(milliseconds=-1000))
    assert httpx.get(expired).status_code == 403
    assert httpx.get(f"{server.api}/datasets/{dataset.get().id}/items").status_code == 404  # type: ignore[union-attr]


def test_an_unchunked_ten_megabyte_push(client: ApifyClient) -> None:
    """apify-client sends a list as one gzip body, unchunked: 10,000 items of about 1 KiB."""
    dataset = client.dataset(client.datasets().get_or_create().id)
    rows: list[dict[str, Any]] = [{"i": i, "text": "z" * 1000} for i in range(10_000)]
    dataset.push_items(rows)
    info = dataset.get()
    assert info is not None
    assert info.item_count == 10_000
    page = dataset.list_items(offset=9_998)
    assert [item["i"] for item in page.items] == [9_998, 9_999]


def test_async_client_concurrent_pushes(server: Server) -> None:
    async def main() -> list[int]:
        client = ApifyClientAsync(token=server.token, api_url=server.base_url)
        created = await client.datasets().get_or_create()
        dataset = client.dataset(created.id)
        await asyncio.gather(*(dataset.push_items([{"w": w, "k": k} for k in range(50)]) for w in range(10)))
        return [item["k"] async for item in dataset.iterate_items(chunk_size=100)]

    keys = asyncio.run(main())
    assert len(keys) == 500
    assert [keys[i : i + 50] for i in range(0, 500, 50)] == [list(range(50))] * 10


def test_the_sdk_pushes_ten_megabytes_in_brotli_chunks(server: Server, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "APIFY_TOKEN": server.token,
        "APIFY_API_BASE_URL": server.base_url,
        "APIFY_API_PUBLIC_BASE_URL": server.base_url,
        "CRAWLEE_STORAGE_DIR": str(tmp_path / "local-storage"),
    }
    done = subprocess.run(
        [sys.executable, str(SDK_ACTOR), "sdk-dataset"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["first"] == [-1, 0, 1]
    assert seen["total"] == 10_001
    assert seen["desc"] == [9_999, 9_998]
    assert seen["iterated"] == 10_001
    assert seen["item_count"] == 10_001
    assert seen["unnamed_items"] == [{"x": 1}]
    with httpx.Client(base_url=server.api, headers={"authorization": f"Bearer {server.token}"}) as http:
        dataset = http.get("/datasets/~sdk-dataset").json()["data"]
        assert dataset["id"] == seen["id"]
        assert dataset["stats"]["writeCount"] >= 3  # the SDK chunked its 10 MB push
        assert http.get(f"/datasets/{seen['unnamed_id']}").status_code == 404  # dropped
