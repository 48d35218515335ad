"""Dataset read parameters the other dataset tests leave out, in-process on every engine: the token in the
query, `bom` on formats other than CSV, delimiters as the clients encode them, `attachment` off and the
attachment's file name, and the pagination headers on a run's dataset.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Server, every_engine
from tests.harness.envelope import assert_error, data_of, unique

server = every_engine(in_process=True)
PAGINATION = ("offset", "limit", "count", "total", "desc")
BOM = b"\xef\xbb\xbf"


@pytest.fixture
def filled(http: httpx.Client) -> dict[str, Any]:
    """A named dataset of three items."""
    ds: dict[str, Any] = data_of(http.post("/datasets", params={"name": unique("dsp")}, json={}), 201)
    assert (
        http.post(f"/datasets/{ds['id']}/items", json=[{"a": i, "b": "x"} for i in range(3)]).status_code
        == 201
    )
    return ds


def test_the_token_may_come_in_the_query(server: Server, filled: dict[str, Any]) -> None:
    with server.anonymous() as anonymous:
        assert_error(anonymous.get(f"/datasets/{filled['id']}"), 404)
        got = data_of(anonymous.get(f"/datasets/{filled['id']}", params={"token": server.token}))
        assert got["id"] == filled["id"]
        read = anonymous.get(f"/datasets/{filled['id']}/items", params={"token": server.token, "limit": 1})
        assert read.status_code == 200
        assert read.json() == [{"a": 0, "b": "x"}]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "xml", "html", "rss"])
def test_bom_is_added_to_any_format_when_asked(http: httpx.Client, filled: dict[str, Any], fmt: str) -> None:
    plain = http.get(f"/datasets/{filled['id']}/items", params={"format": fmt})
    assert not plain.content.startswith(BOM)
    marked = http.get(f"/datasets/{filled['id']}/items", params={"format": fmt, "bom": "1"})
    assert marked.content == BOM + plain.content


def test_csv_bom_off_and_delimiters_as_sent_encoded(http: httpx.Client, filled: dict[str, Any]) -> None:
    # Query strings as the clients send them: `;` as %3B, a tab as %09.
    for encoded, sep in (("%3B", ";"), ("%09", "\t")):
        query = f"format=csv&bom=0&delimiter={encoded}&fields=a,b"
        response = http.get(f"/datasets/{filled['id']}/items?{query}")
        assert response.status_code == 200
        assert response.content.decode().splitlines() == [f"a{sep}b", f"0{sep}x", f"1{sep}x", f"2{sep}x"]


def test_attachment_names_the_file_and_is_off_by_default(http: httpx.Client, filled: dict[str, Any]) -> None:
    url = f"/datasets/{filled['id']}/items"
    assert "content-disposition" not in http.get(url, params={"format": "csv"}).headers
    assert "content-disposition" not in http.get(url, params={"format": "csv", "attachment": "false"}).headers
    named = http.get(url, params={"format": "xlsx", "attachment": "true"})
    assert named.headers["content-disposition"] == f'attachment; filename="{filled["name"]}.xlsx"'
    unnamed = data_of(http.post("/datasets", json={}), 201)
    by_id = http.get(f"/datasets/{unnamed['id']}/items", params={"format": "jsonl", "attachment": "1"})
    assert by_id.headers["content-disposition"] == f'attachment; filename="{unnamed["id"]}.jsonl"'


def test_a_runs_dataset_items_carry_the_pagination_headers(http: httpx.Client) -> None:
    run = data_of(http.post(f"/acts/~{unique('dsp-actor')}/runs"), 201)
    pushed = http.post(f"/actor-runs/{run['id']}/dataset/items", json=[{"n": n} for n in range(5)])
    assert pushed.status_code == 201
    for path in (f"/actor-runs/{run['id']}/dataset/items", f"/datasets/{run['defaultDatasetId']}/items"):
        response = http.get(path, params={"offset": 1, "limit": 2, "desc": "true"})
        assert response.json() == [{"n": 3}, {"n": 2}]
        headers = {name: response.headers[f"x-apify-pagination-{name}"] for name in PAGINATION}
        assert headers == {"offset": "1", "limit": "2", "count": "2", "total": "5", "desc": "true"}
