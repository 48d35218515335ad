"""A ZIP of a store holds every record it listed, exactly as listed, or the transfer fails.

The archive is made as it is sent, a keyset page of records at a time; a body is read some time after its
page was listed. A record replaced or deleted since, whose blob is gone by then (past blob_grace_seconds),
or a body that is not its listed size, ends the transfer before the archive's end: the client sees an
incomplete download, never a valid archive that leaves a record out.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from satchel.service.records_zip import ZIP_PIECE, zip_stream
from satchel.storage.body import RecordRead
from satchel.storage.rows import RecordHead
from tests.conftest import Server, servers_on
from tests.harness.backends import COMBOS, Backends
from tests.harness.bodies import MIB, chunks


@pytest.fixture(scope="module", params=COMBOS)
def server(
    request: pytest.FixtureRequest, backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    # No grace: a replaced record's blob goes at the next purge (every 0.5 s).
    yield from servers_on(request.param, backends, tmp_path_factory, env={"SATCHEL_BLOB_GRACE_SECONDS": "0"})


def new_store(http: httpx.Client) -> str:
    return str(http.post("/key-value-stores").json()["data"]["id"])


def blob_file(server: Server, store_id: str, key: str) -> Path:
    with sqlite3.connect(server.data_dir / "satchel.db") as db:
        row = db.execute(
            "SELECT r.blob FROM records r JOIN stores s ON s.pk = r.store_pk WHERE s.id = ? AND r.key = ?",
            (store_id, key),
        ).fetchone()
    name = str(row[0])
    return server.data_dir / "blobs" / name[:2] / name


def download(http: httpx.Client, store_id: str) -> zipfile.ZipFile:
    response = http.get(f"/key-value-stores/{store_id}/records")
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(response.content))


@pytest.mark.parametrize("change", ["replaced", "deleted"])
def test_a_zip_fails_when_a_record_it_listed_went_while_it_was_sent(server: Server, change: str) -> None:
    with server.client() as http:
        store_id = new_store(http)
        records = f"/key-value-stores/{store_id}/records"
        # "a" is large enough that the server is still sending it when "b" changes and its file goes.
        assert http.put(f"{records}/a", content=chunks(96 * MIB)).status_code == 201
        assert http.put(f"{records}/b", content=b"old" * MIB).status_code == 201
        assert http.put(f"{records}/c", content=b"c" * MIB).status_code == 201
        assert download(http, store_id).namelist() == ["a", "b", "c"]  # unchanged: whole
        with http.stream("GET", records) as response:
            body = response.iter_bytes()
            next(body)
            if change == "replaced":
                assert http.put(f"{records}/b", content=b"new" * MIB).status_code == 201
            else:
                assert http.delete(f"{records}/b").status_code == 204
            time.sleep(2.0)  # the purge runs every 0.5 s with no grace
            with pytest.raises(httpx.RemoteProtocolError):  # cut off before the archive's end
                b"".join(body)


def test_a_zip_fails_when_a_body_is_gone_or_short(server: Server) -> None:
    """What a slow reader meets, made at once: the blob a listed record names is gone, or is cut short."""
    if not (server.data_dir / "satchel.db").exists():
        pytest.skip("made by changing the blob files of the embedded engine")
    with server.client() as http:
        store_id = new_store(http)
        records = f"/key-value-stores/{store_id}/records"
        for key in ("a", "b", "c"):
            assert http.put(f"{records}/{key}", content=key.encode() * MIB).status_code == 201
        blob_file(server, store_id, "b").unlink()
        with pytest.raises(httpx.RemoteProtocolError):
            http.get(records)
        assert http.put(f"{records}/b", content=b"b" * MIB).status_code == 201
        assert download(http, store_id).read("b") == b"b" * MIB
        with open(blob_file(server, store_id, "c"), "r+b") as f:
            f.truncate(MIB // 2)
        with pytest.raises(httpx.RemoteProtocolError):
            http.get(records)


def test_a_zip_is_sent_in_small_pieces() -> None:
    """What the archive holds ahead of a client that reads slowly is one piece, and the server holds several
    pieces per connection: pieces of 4 MiB kept 13 MiB per stalled download, and 400 stalled downloads took
    the server past 5 GiB."""
    size = 8 * MIB
    body = bytes(range(256)) * (size // 256)

    async def blob(start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        for at in range(0, size, 256 * 1024):  # as the file blob store reads
            yield body[at : at + 256 * 1024]

    async def records() -> AsyncIterator[RecordRead]:
        yield RecordRead(RecordHead("big", "application/octet-stream", None, size, size, 0), None, blob)

    async def pieces() -> list[bytes]:
        return [piece async for piece in zip_stream("s", records())]

    sent = asyncio.run(pieces())
    assert max(len(piece) for piece in sent) <= ZIP_PIECE + 256 * 1024
    assert zipfile.ZipFile(io.BytesIO(b"".join(sent))).read("big") == body
