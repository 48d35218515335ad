"""The dataset endpoints' HTTP contract, with plain httpx against the app in-process on every engine.

The collection, one dataset, pushes (bodies, encodings, sizes, counts, concurrency), reads (every parameter,
the pagination headers, ranges deep into a large dataset), access and signatures, statistics, and bad input
on every endpoint answered with a 4xx and the error envelope.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import brotli
import httpx
import orjson
import pytest

from satchel.clock import now_ms
from satchel.storage.rows import ItemBatch
from tests.conftest import Server, every_engine
from tests.harness.envelope import assert_error, data_of, unique

server = every_engine(in_process=True)
PAGINATION = ("offset", "limit", "count", "total", "desc")
MIB = 1024 * 1024


def new_dataset(http: httpx.Client, name: str | None = None) -> dict[str, Any]:
    params = {"name": name} if name else {}
    return data_of(http.post("/datasets", params=params, json={}), 201)  # type: ignore[no-any-return]


def push(http: httpx.Client, dataset_id: str, items: Any, **kwargs: Any) -> httpx.Response:
    return http.post(f"/datasets/{dataset_id}/items", json=items, **kwargs)


def items(http: httpx.Client, dataset_id: str, **params: Any) -> tuple[Any, dict[str, str]]:
    response = http.get(f"/datasets/{dataset_id}/items", params=params)
    assert response.status_code == 200, response.text
    headers = {name: response.headers[f"x-apify-pagination-{name}"] for name in PAGINATION}
    return response.json(), headers


@pytest.fixture
def ds(http: httpx.Client) -> dict[str, Any]:
    return new_dataset(http)


@pytest.fixture
def filled(http: httpx.Client, ds: dict[str, Any]) -> str:
    """A dataset of ten items {"i": 0..9}, the odd ones with only hidden fields besides nothing else."""
    rows = [{"i": i} if i % 2 == 0 else {"#i": i} for i in range(10)]
    assert push(http, ds["id"], rows).status_code == 201
    return str(ds["id"])


# --- the collection and one dataset


def test_create_get_or_create_and_the_dataset_object(http: httpx.Client, server: Server) -> None:
    name = unique("ds")
    created = http.post("/datasets", params={"name": name}, json={})
    data = data_of(created, 201)
    assert created.headers["location"] == f"{server.base_url}/v2/datasets/{data['id']}"
    again = data_of(http.post("/datasets", params={"name": name}, json={}), 200)
    assert again["id"] == data["id"]
    assert data["name"] == name
    assert data["itemCount"] == data["cleanItemCount"] == 0
    assert data["consoleUrl"] == f"{server.base_url}/console/datasets/{data['id']}"
    assert data["itemsPublicUrl"].startswith(f"{server.base_url}/v2/datasets/{data['id']}/items?signature=")
    assert data["urlSigningSecretKey"]
    assert set(data["stats"]) == {"readCount", "writeCount", "storageBytes"}
    for field in ("createdAt", "modifiedAt", "accessedAt"):
        assert data[field].endswith("Z")
    unnamed = data_of(http.post("/datasets"), 201)
    assert unnamed["name"] is None
    schema = {"actorSpecification": 1, "fields": {}, "views": {}}
    with_schema = data_of(http.post("/datasets", params={"name": unique("ds")}, json={"schema": schema}), 201)
    assert with_schema["schema"] == schema


def test_get_by_id_and_by_name(http: httpx.Client) -> None:
    name = unique("ds")
    data = new_dataset(http, name)
    for ref in (data["id"], f"admin~{name}", f"~{name}"):
        assert data_of(http.get(f"/datasets/{ref}"))["id"] == data["id"]
    assert_error(http.get("/datasets/nosuchdatasetid1"), 404, "record-not-found")
    assert_error(http.get(f"/datasets/admin~{unique('ds')}"), 404, "record-not-found")


def test_names_are_per_kind(http: httpx.Client) -> None:
    name = unique("ds")
    store = data_of(http.post("/key-value-stores", params={"name": name}), 201)
    dataset = new_dataset(http, name)
    assert dataset["id"] != store["id"]
    assert_error(http.get(f"/datasets/{store['id']}"), 404)


def test_update_and_delete(http: httpx.Client) -> None:
    data = new_dataset(http, unique("ds"))
    renamed = unique("ds")
    changed = data_of(http.put(f"/datasets/{data['id']}", json={"name": renamed, "title": "T"}))
    assert (changed["name"], changed["title"]) == (renamed, "T")
    other = new_dataset(http, unique("ds"))
    assert_error(http.put(f"/datasets/{other['id']}", json={"name": renamed}), 409)
    access = data_of(http.put(f"/datasets/{data['id']}", json={"generalAccess": "ANYONE_WITH_ID_CAN_READ"}))
    assert access["generalAccess"] == "ANYONE_WITH_ID_CAN_READ"
    assert http.delete(f"/datasets/{data['id']}").status_code == 204
    assert_error(http.get(f"/datasets/{data['id']}"), 404)
    assert_error(http.delete(f"/datasets/{data['id']}"), 404)


def test_list_named_unnamed_paging_and_counts(http: httpx.Client) -> None:
    named = new_dataset(http, unique("ds"))
    unnamed = new_dataset(http)
    push(http, named["id"], [{"a": 1}, {"#b": 2}])
    page = data_of(http.get("/datasets"))
    ids = [item["id"] for item in page["items"]]
    assert named["id"] in ids
    assert unnamed["id"] not in ids
    listed = next(item for item in page["items"] if item["id"] == named["id"])
    assert (listed["itemCount"], listed["cleanItemCount"]) == (2, 1)
    assert "schema" not in listed
    everything = data_of(http.get("/datasets", params={"unnamed": "true"}))
    shown = next(item for item in everything["items"] if item["id"] == unnamed["id"])
    assert shown["name"] == ""  # a string, as the Python client's list model requires
    one = data_of(http.get("/datasets", params={"unnamed": 1, "limit": 1, "offset": 1, "desc": 1}))
    assert (one["limit"], one["offset"], one["desc"], one["count"]) == (1, 1, True, 1)
    assert data_of(http.get("/datasets", params={"limit": 0}))["limit"] == 1000
    assert data_of(http.get("/datasets", params={"limit": 5000}))["limit"] == 1000
    owned = data_of(http.get("/datasets", params={"ownership": "ownedByMe"}))
    assert named["id"] in [item["id"] for item in owned["items"]]


# --- pushes


def test_push_one_or_many_in_order_with_counts(
    http: httpx.Client, ds: dict[str, Any], server: Server
) -> None:
    response = push(http, ds["id"], {"a": 0})
    assert response.status_code == 201
    assert response.json() == {}
    assert response.headers["location"] == f"{server.base_url}/v2/datasets/{ds['id']}/items"
    assert push(http, ds["id"], [{"a": 1}, {"#h": 2}, {}]).status_code == 201
    assert push(http, ds["id"], []).status_code == 201
    body, headers = items(http, ds["id"])
    assert body == [{"a": 0}, {"a": 1}, {"#h": 2}, {}]
    assert headers["total"] == "4"
    data = data_of(http.get(f"/datasets/{ds['id']}"))
    assert (data["itemCount"], data["cleanItemCount"]) == (4, 2)
    assert data["stats"]["writeCount"] == 2
    assert data["stats"]["storageBytes"] > 0


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_push_encoded_bodies(http: httpx.Client, ds: dict[str, Any], encoding: str) -> None:
    raw = orjson.dumps([{"n": i, "text": "x" * 100} for i in range(100)])
    body = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}[encoding](raw)
    response = http.post(
        f"/datasets/{ds['id']}/items",
        content=body,
        headers={"content-type": "application/json", "content-encoding": encoding},
    )
    assert response.status_code == 201, response.text
    body_out, headers = items(http, ds["id"], offset=98)
    assert [item["n"] for item in body_out] == [98, 99]
    assert headers["total"] == "100"


def test_push_of_nine_mib_brotli_and_413_above_the_limit(http: httpx.Client, ds: dict[str, Any]) -> None:
    item = {"text": "y" * 1000}
    chunk = orjson.dumps([item] * (9_436_240 // (len(orjson.dumps(item)) + 1)))
    assert 9 * MIB - 5000 < len(chunk) <= 9_436_240
    headers = {"content-type": "application/json; charset=utf-8", "content-encoding": "br"}
    ok = http.post(f"/datasets/{ds['id']}/items", content=brotli.compress(chunk, quality=1), headers=headers)
    assert ok.status_code == 201, ok.text
    big = orjson.dumps([item] * (11 * MIB // 1000))
    refused = http.post(
        f"/datasets/{ds['id']}/items", content=brotli.compress(big, quality=1), headers=headers
    )
    assert_error(refused, 413)
    assert_error(http.post(f"/datasets/{ds['id']}/items", content=big), 413)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"[1, 2]", {}),
        (b'[{"a": 1}, "x"]', {}),
        (b'"text"', {}),
        (b"42", {}),
        (b"null", {}),
        (b"", {}),
        (b"{not json", {}),
        (b'{"a": 1e400}', {}),
        (b"\x1f\x8b garbage", {"content-encoding": "gzip"}),
    ],
)
def test_bad_pushes_are_400(
    http: httpx.Client, ds: dict[str, Any], body: bytes, headers: dict[str, str]
) -> None:
    assert_error(http.post(f"/datasets/{ds['id']}/items", content=body, headers=headers), 400)
    assert data_of(http.get(f"/datasets/{ds['id']}"))["itemCount"] == 0


def test_bad_encoding_and_missing_dataset(http: httpx.Client, ds: dict[str, Any]) -> None:
    response = http.post(f"/datasets/{ds['id']}/items", content=b"{}", headers={"content-encoding": "zstd"})
    assert_error(response, 415)
    assert_error(push(http, "nosuchdatasetid1", {"a": 1}), 404)


def test_concurrent_pushes_never_interleave_or_lose_items(http: httpx.Client, server: Server) -> None:
    ds = new_dataset(http)
    writers, batches, size = 8, 10, 25

    def work(writer: int) -> None:
        with server.client() as client:
            for batch in range(batches):
                rows = [{"w": writer, "b": batch, "k": k} for k in range(size)]
                assert push(client, ds["id"], rows).status_code == 201

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(work, range(writers)))
    body, headers = items(http, ds["id"])
    assert headers["total"] == str(writers * batches * size)
    assert len(body) == writers * batches * size
    # Each push is contiguous and in order; each writer's pushes keep their order.
    for start in range(0, len(body), size):
        run = body[start : start + size]
        assert [item["k"] for item in run] == list(range(size))
        assert len({(item["w"], item["b"]) for item in run}) == 1
    for writer in range(writers):
        assert [item["b"] for item in body if item["w"] == writer and item["k"] == 0] == list(range(batches))


def test_a_push_of_many_items_leaves_the_server_answering(http: httpx.Client, server: Server) -> None:
    """A push of many small items (within the size limit) takes a while to store; meanwhile the event loop
    that answers every other request is never held for most of it, as it was while SQLite inserted them."""
    ds = new_dataset(http)
    count = 400_000
    body = b"[" + b",".join([b"{}"] * count) + b"]"
    app = server.app
    assert app is not None

    async def pushed_while_watched() -> float:
        """The longest the loop went without a turn, as a share of the whole push."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        push = loop.run_in_executor(None, lambda: http.post(f"/datasets/{ds['id']}/items", content=body))
        last, longest = start, 0.0
        while not push.done():
            await asyncio.sleep(0.001)
            now = loop.time()
            longest, last = max(longest, now - last), now
        assert (await push).status_code == 201
        return longest / (loop.time() - start)

    share = app.run(pushed_while_watched())
    assert share < 0.5, f"the loop stood still for {share:.0%} of the push"
    assert items(http, ds["id"], limit=1)[1]["total"] == str(count)


# --- reads


def test_pagination_headers_and_ranges(http: httpx.Client, filled: str) -> None:
    body, headers = items(http, filled, offset=2, limit=3)
    assert body == [{"i": 2}, {"#i": 3}, {"i": 4}]
    assert headers == {"offset": "2", "limit": "3", "count": "3", "total": "10", "desc": "false"}
    body, headers = items(http, filled, offset=1, limit=3, desc="true")
    assert body == [{"i": 8}, {"#i": 7}, {"i": 6}]
    assert headers["desc"] == "true"
    body, headers = items(http, filled, offset=8, limit=5)
    assert len(body) == 2
    assert headers["count"] == "2"
    body, headers = items(http, filled, offset=20)
    assert body == []
    assert headers["count"] == "0"


def test_browsers_may_read_the_pagination_headers(http: httpx.Client, filled: str) -> None:
    response = http.get(f"/datasets/{filled}/items", params={"limit": 1})
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    for name in ("offset", "limit", "count", "total", "desc"):
        assert f"x-apify-pagination-{name}" in exposed
    _, headers = items(http, filled)
    assert headers["limit"] == "999999999999"
    for big in ("999999999999", "99999999999999999999999", "0", "5.0"):
        body, headers = items(http, filled, limit=big)
        assert len(body) == (5 if big == "5.0" else 10), big


def test_count_is_rows_scanned_not_items_returned(http: httpx.Client, filled: str) -> None:
    body, headers = items(http, filled, offset=1, limit=1, clean="true")
    assert body == []
    assert headers["count"] == "1"
    body, headers = items(http, filled, limit=4, skipHidden=1, skipEmpty=1)
    assert body == [{"i": 0}, {"i": 2}]
    assert headers["count"] == "4"
    body, _ = items(http, filled, limit=2, skipHidden="true")
    assert body == [{"i": 0}, {}]


def test_fields_omit_unwind_flatten_and_legacy_options(http: httpx.Client, ds: dict[str, Any]) -> None:
    rows = [
        {"url": "u1", "pageFunctionResult": [{"p": 1}, {"p": 2}], "errorInfo": None, "x": {"y": {"z": 1}}},
        {"url": "u2", "errorInfo": "failed", "x": 1},
    ]
    push(http, ds["id"], rows)
    body, _ = items(http, ds["id"], fields="x,url")
    assert [list(item) for item in body] == [["x", "url"], ["x", "url"]]
    body, _ = items(http, ds["id"], omit="x,pageFunctionResult,errorInfo")
    assert body == [{"url": "u1"}, {"url": "u2"}]
    body, headers = items(
        http, ds["id"], unwind="pageFunctionResult", fields="url,pageFunctionResult", desc=1
    )
    assert body == [{"url": "u2"}, {"url": "u1", "p": 1}, {"url": "u1", "p": 2}]
    assert headers["count"] == "2"
    body, _ = items(http, ds["id"], flatten="x", fields="x", limit=1)
    assert body == [{"x.y.z": 1}]
    body, _ = items(http, ds["id"], simplified="true")
    assert body == [{"url": "u1", "errorInfo": None, "p": 1}, {"url": "u1", "errorInfo": None, "p": 2},
                    {"url": "u2", "errorInfo": "failed"}]  # fmt: skip
    body, _ = items(http, ds["id"], skipFailedPages="true", fields="url")
    assert body == [{"url": "u1"}]


def test_view_of_the_schema(http: httpx.Client) -> None:
    schema = {"views": {"overview": {"transformation": {"fields": ["b", "a"]}}}}
    ds = data_of(http.post("/datasets", params={"name": unique("ds")}, json={"schema": schema}), 201)
    push(http, ds["id"], {"a": 1, "b": 2, "c": 3})
    body, _ = items(http, ds["id"], view="overview")
    assert [list(item) for item in body] == [["b", "a"]]
    assert_error(http.get(f"/datasets/{ds['id']}/items", params={"view": "nope"}), 400)


@pytest.mark.parametrize(
    ("fmt", "media"),
    [
        ("json", "application/json"),
        ("jsonl", "application/jsonl"),
        ("csv", "text/csv"),
        ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("html", "text/html"),
        ("xml", "application/xml"),
        ("rss", "application/rss+xml"),
    ],
)
def test_every_format_has_its_type_and_the_headers(
    http: httpx.Client, filled: str, fmt: str, media: str
) -> None:
    response = http.get(f"/datasets/{filled}/items", params={"format": fmt, "limit": 4, "attachment": "true"})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media
    for name in PAGINATION:
        assert f"x-apify-pagination-{name}" in response.headers
    assert response.headers["x-apify-pagination-count"] == "4"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content


def test_csv_options(http: httpx.Client, filled: str) -> None:
    response = http.get(
        f"/datasets/{filled}/items",
        params={"format": "csv", "limit": 3, "delimiter": ";", "bom": "false", "skipHeaderRow": "true"},
    )
    assert response.content.decode().splitlines() == ["0;", ";1", "2;"]
    with_bom = http.get(f"/datasets/{filled}/items", params={"format": "csv"})
    assert with_bom.content.startswith(b"\xef\xbb\xbf")


def test_xml_root_and_row(http: httpx.Client, filled: str) -> None:
    response = http.get(
        f"/datasets/{filled}/items", params={"format": "xml", "limit": 1, "xmlRoot": "r", "xmlRow": "row"}
    )
    assert b"<r>\n<row><i>0</i></row>\n</r>" in response.content


@pytest.mark.parametrize(
    "params",
    [
        {"format": "pdf"},
        {"offset": "-1"},
        {"offset": "x"},
        {"limit": "-5"},
        {"limit": "ten"},
        {"desc": "maybe"},
        {"clean": "2"},
        {"skipEmpty": "yes"},
        {"delimiter": ";;"},
        {"delimiter": '"'},
        {"xmlRoot": "1bad"},
        {"xmlRow": "a b"},
        {"attachment": "x"},
    ],
)
def test_bad_read_parameters_are_400(http: httpx.Client, filled: str, params: dict[str, str]) -> None:
    assert_error(http.get(f"/datasets/{filled}/items", params=params), 400)


def test_bad_input_on_the_other_endpoints(http: httpx.Client, ds: dict[str, Any]) -> None:
    assert_error(http.post("/datasets", content=b"[1]"), 400)
    assert_error(http.post("/datasets", content=b"{bad"), 400)
    assert_error(http.post("/datasets", params={"name": "bad name!"}, json={}), 400)
    assert_error(http.post("/datasets", json={"schema": "nope"}), 400)
    assert_error(http.get("/datasets", params={"ownership": "everyone"}), 400)
    assert_error(http.get("/datasets", params={"offset": "-1"}), 400)
    assert_error(http.put(f"/datasets/{ds['id']}", content=b"[]"), 400)
    assert_error(http.put(f"/datasets/{ds['id']}", json={"generalAccess": "EVERYONE"}), 400)
    assert_error(http.put(f"/datasets/{ds['id']}", json={"name": 5}), 400)
    assert_error(http.get("/datasets/nosuchdatasetid1/statistics"), 404)
    assert_error(http.patch(f"/datasets/{ds['id']}/items"), 405)


def test_statistics(http: httpx.Client, filled: str) -> None:
    assert data_of(http.get(f"/datasets/{filled}/statistics")) == {"fieldStatistics": None}


# --- access


def test_access_general_and_signed(http: httpx.Client, server: Server, ds: dict[str, Any]) -> None:
    push(http, ds["id"], {"a": 1})
    with server.anonymous() as anonymous:
        assert_error(anonymous.get(f"/datasets/{ds['id']}/items"), 404)
        assert_error(anonymous.get(f"/datasets/{ds['id']}"), 404)
        signed = anonymous.get(ds["itemsPublicUrl"])
        assert signed.status_code == 200
        assert signed.json() == [{"a": 1}]
        forged = anonymous.get(f"/datasets/{ds['id']}/items", params={"signature": "MC4wLmFhYWFh"})
        assert_error(forged, 404)
        assert_error(push(anonymous, ds["id"], {"a": 2}), 401)
        http.put(f"/datasets/{ds['id']}", json={"generalAccess": "ANYONE_WITH_ID_CAN_READ"})
        assert anonymous.get(f"/datasets/{ds['id']}/items").json() == [{"a": 1}]
        seen = data_of(anonymous.get(f"/datasets/{ds['id']}"))
        assert "urlSigningSecretKey" not in seen
        assert "signature" not in seen["itemsPublicUrl"]
        assert_error(push(anonymous, ds["id"], {"a": 2}), 401)
        assert_error(anonymous.delete(f"/datasets/{ds['id']}"), 401)


def test_reads_and_writes_are_counted(http: httpx.Client, filled: str) -> None:
    before = data_of(http.get(f"/datasets/{filled}"))["stats"]
    items(http, filled)
    push(http, filled, {"a": 1})
    after = data_of(http.get(f"/datasets/{filled}"))["stats"]
    assert after["readCount"] == before["readCount"] + 1
    assert after["writeCount"] == before["writeCount"] + 1


# --- a page deep into a large dataset


def test_a_page_at_offset_one_million(http: httpx.Client, server: Server) -> None:
    assert server.app is not None
    if server.app.settings.database and server.app.settings.blob_store:
        pytest.skip("the items live in PostgreSQL as on postgres+files, where this runs")
    ds = new_dataset(http)
    storage = server.app.app.services.storage
    pk = server.app.run(storage.stores.by_id(ds["id"])).pk  # type: ignore[union-attr]
    total, step = 1_000_050, 100_000
    for start in range(0, total, step):
        rows = [b'{"i":%d}' % i for i in range(start, min(total, start + step))]
        server.app.run(storage.datasets.append(pk, ItemBatch(rows, len(rows), 0), now=now_ms()))
    body, headers = items(http, ds["id"], offset=1_000_000, limit=3)
    assert body == [{"i": 1_000_000}, {"i": 1_000_001}, {"i": 1_000_002}]
    assert headers["total"] == str(total)
    body, _ = items(http, ds["id"], offset=1_000_000, limit=3, desc="true")
    assert body == [{"i": 49}, {"i": 48}, {"i": 47}]
    body, headers = items(http, ds["id"], offset=1_000_040, clean="true")
    assert [item["i"] for item in body] == list(range(1_000_040, total))
    assert headers["count"] == "10"
