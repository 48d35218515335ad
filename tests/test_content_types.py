"""One rule for a record's content type whichever way it comes in, and every record readable whatever its row.

A content type goes back out as a header, so it is stored only if a header can carry it: at most 255
characters of Latin-1 without control characters. The API, the Console and `satchel import` all go through
that one rule. Rows stored before it (a type with characters past Latin-1 made every GET and HEAD of the
record a 500) are read with application/octet-stream.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.harness.cli import run_cli

REFUSED = ["text/plain; charset=\u65e5\u672c", "text/\u20ac", "text/x\x85y", "text/x\x7fy", "a/" + "b" * 254]
KEPT = ["text/caf\xe9; name=\xa0\xff", "application/json"]
# What rows stored before the rule may hold: past Latin-1, control characters, a header's end.
STORED_BAD = ["text/\u65e5\u672c", "text/plain\r\nx-injected: 1", "a\x00b", "text/\x85", ""]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("content-types") / "data")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def console(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        assert client.post("/console/login", data={"token": server.token}).status_code == 303
        yield client


@pytest.fixture
def store(server: Server) -> str:
    with server.client() as api:
        return str(api.post("/key-value-stores").json()["data"]["id"])


def sent_type(response: httpx.Response) -> str:
    return dict(response.headers.raw)[b"content-type"].decode("latin-1")


def test_the_console_keeps_to_the_rule(server: Server, console: httpx.Client, store: str) -> None:
    for i, content_type in enumerate(REFUSED + KEPT):
        form = {"key": f"k{i}", "contentType": content_type, "text": "value"}
        answer = console.post(f"/console/key-value-stores/{store}/records", data=form)
        with server.client() as api:
            got = api.get(f"/key-value-stores/{store}/records/k{i}")
        if content_type in KEPT:
            assert (answer.status_code, got.status_code, sent_type(got)) == (303, 200, content_type)
        else:
            assert (answer.status_code, got.status_code) == (400, 404), repr(content_type)
            assert "Content-Type must be at most 255 characters of Latin-1" in answer.text


def test_import_keeps_to_the_rule(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "typed"
    folder.mkdir()
    for i, content_type in enumerate(REFUSED + KEPT):
        (folder / f"k{i}").write_text("value")
        meta = {"key": f"k{i}", "contentType": content_type}
        (folder / f"k{i}.__metadata__.json").write_text(json.dumps(meta))
    done = run_cli("import", str(folder), data_dir=server.data_dir)
    assert f"typed: {len(KEPT)} records" in done.stdout
    assert done.stderr.count("Content-Type must be at most 255 characters of Latin-1") == len(REFUSED)
    with server.client() as api:
        for i, content_type in enumerate(REFUSED + KEPT):
            got = api.get(f"/key-value-stores/~typed/records/k{i}")
            if content_type in KEPT:
                assert sent_type(got) == content_type
            else:
                assert got.status_code == 404


def test_a_record_whose_stored_type_no_header_can_carry_is_still_read(
    server: Server, console: httpx.Client, store: str
) -> None:
    bodies = {}
    with server.client() as api:
        for i in range(len(STORED_BAD)):
            # Inline bodies and blob files (sent by the server from the file) alike.
            bodies[f"k{i}"] = os.urandom(200_000 if i % 2 else 100)
            api.put(f"/key-value-stores/{store}/records/k{i}", content=bodies[f"k{i}"])
    with sqlite3.connect(server.data_dir / "satchel.db") as db:
        for i, bad in enumerate(STORED_BAD):
            db.execute(
                "UPDATE records SET content_type = ? WHERE key = ?"
                " AND store_pk = (SELECT pk FROM stores WHERE id = ?)",
                (bad, f"k{i}", store),
            )
    with server.client() as api:
        for key, body in bodies.items():
            got = api.get(f"/key-value-stores/{store}/records/{key}")
            assert (got.status_code, got.content, sent_type(got)) == (200, body, "application/octet-stream")
            assert "x-injected" not in got.headers
            head = api.head(f"/key-value-stores/{store}/records/{key}")
            assert (head.status_code, sent_type(head)) == (200, "application/octet-stream")
            page = console.get(f"/console/key-value-stores/{store}/records/{key}")
            assert page.status_code == 200
            raw = console.get(f"/console/key-value-stores/{store}/records/{key}/raw")
            assert (raw.status_code, raw.content) == (200, body)
            assert sent_type(raw) == "application/octet-stream"
        archive = zipfile.ZipFile(io.BytesIO(api.get(f"/key-value-stores/{store}/records").content))
        assert {name: archive.read(name) for name in archive.namelist()} == bodies
