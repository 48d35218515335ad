"""Hostile input in the body: records past the size limit, JSON that is not JSON or not the shape an
endpoint takes, and decompression bombs read back in bounded memory. Sent over a raw socket to a seeded
server, each case with the status and error type it must get (tests/harness/hostile.py holds the rule)."""

from __future__ import annotations

import gzip
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.harness.hostile import (
    JSON_ROUTES,
    MAX_RECORD,
    MIB,
    REC,
    SCRATCH,
    SCRATCH_REC,
    Case,
    Engine,
    Hostile,
    PeakRss,
    Table,
    check_case,
    check_table_leaves_kv_seed_unchanged,
)

TABLE = Table()
case = TABLE.case

# Bodies over the record size limit (max_record_bytes, set low for this server) and the JSON body limit.
case("size", "record-at-limit", "PUT", SCRATCH_REC + "big", 201, body=b"a" * MAX_RECORD)
case(
    "size",
    "record-over-limit",
    "PUT",
    SCRATCH_REC + "big",
    413,
    "record-too-large",
    body=b"b" * (MAX_RECORD + 1),
)
case(
    "size",
    "record-far-over",
    "PUT",
    SCRATCH_REC + "big",
    413,
    "record-too-large",
    body=b"c" * (3 * MAX_RECORD),
)
case("size", "seed-over-limit", "PUT", REC + "k1", 413, "record-too-large", body=b"d" * (MAX_RECORD + 1))
case(
    "size",
    "gzip-over-limit",
    "PUT",
    SCRATCH_REC + "big",
    413,
    "record-too-large",
    headers=(("Content-Encoding", "gzip"),),
    body=gzip.compress(os.urandom(MAX_RECORD + 1024), 1),
)
case(
    "size",
    "declared-huge",
    "PUT",
    "",
    413,
    "record-too-large",
    raw=b"PUT /v2/key-value-stores/{sid}/records/k1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    b"Authorization: Bearer {token}\r\nContent-Length: 10737418240\r\n\r\npartial",
)
case(
    "size",
    "declared-over-by-one",
    "PUT",
    "",
    413,
    "record-too-large",
    raw=b"PUT /v2/key-value-stores/{sid}/records/k1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    b"Authorization: Bearer {token}\r\nContent-Length: " + str(MAX_RECORD + 1).encode() + b"\r\n\r\n",
)
case(
    "size",
    "chunked-over-limit",
    "PUT",
    "",
    413,
    "record-too-large",
    raw=b"PUT /v2/key-value-stores/{sid}/records/k1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    b"Authorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n"
    + (b"100000\r\n" + b"e" * 0x100000 + b"\r\n") * 3
    + b"0\r\n\r\n",
)
case("size", "big-after", "GET", SCRATCH_REC + "big", 200)  # seeded at the limit (SCRATCH_RECORDS)
for route, (method, target) in JSON_ROUTES.items():
    case(
        "size",
        f"json-over-{route}",
        method,
        target,
        413,
        "request-too-large",
        body=b'{"title": "' + b"x" * (1024 * 1024) + b'"}',
    )
for route, (method, target) in JSON_ROUTES.items():
    head = f"{method} /v2{target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += "Authorization: Bearer {token}\r\n"
    case(
        "size",
        f"json-declared-huge-{route}",
        method,
        "",
        413,
        "request-too-large",
        raw=head.encode() + b"Content-Length: 10737418240\r\n\r\n{",
    )
case("size", "json-deep", "PUT", SCRATCH, 400, "invalid-request", body=b"[" * 100000 + b"]" * 100000)

# JSON bodies that are not JSON, or not the shape an endpoint takes.
NOT_JSON = {
    "open-brace": b"{",
    "trailing-comma": b'{"a": 1,}',
    "single-quotes": b"{'a': 1}",
    "nan": b'{"title": NaN}',
    "bom": b'\xef\xbb\xbf{"title": "x"}',
    "invalid-utf8": b'{"title": "\xff"}',
    "lone-surrogate": b'{"title": "\\ud800"}',
    "two-values": b"{} {}",
    "bare-word": b"hello",
    "deep": b"[" * 5000 + b"]" * 5000,
}
for route, (method, target) in JSON_ROUTES.items():
    for name, body in NOT_JSON.items():
        case("json", f"{route}-{name}", method, target, 400, "invalid-request", body=body)
    for name, body in {"array": b"[]", "string": b'"x"', "number": b"1", "true": b"true"}.items():
        case("json", f"{route}-{name}", method, target, 400, "invalid-request", body=body)
for name, (body, status, etype) in {
    "name-number": (b'{"name": 5}', 400, "invalid-value"),
    "name-list": (b'{"name": ["a"]}', 400, "invalid-value"),
    "name-object": (b'{"name": {"a": 1}}', 400, "invalid-value"),
    "name-bool": (b'{"name": true}', 400, "invalid-value"),
    "access-bad": (b'{"generalAccess": "EVERYONE"}', 400, "invalid-value"),
    "access-number": (b'{"generalAccess": 1}', 400, "invalid-value"),
    "access-list": (b'{"generalAccess": ["RESTRICTED"]}', 400, "invalid-value"),
    "access-object": (b'{"generalAccess": {}}', 400, "invalid-value"),
    "access-lower": (b'{"generalAccess": "restricted"}', 400, "invalid-value"),
    "title-number": (b'{"title": 5}', 400, "invalid-value"),
    "title-list": (b'{"title": []}', 400, "invalid-value"),
    "title-bell": (b'{"title": "a\\u0007b"}', 400, "invalid-value"),
    # A right-to-left override shows the title's characters in another order than they are.
    "title-bidi-override": (b'{"title": "invoice \\u202egnp.exe"}', 400, "invalid-value"),
    "title-bidi-isolate": (b'{"title": "a\\u2066b\\u2069"}', 400, "invalid-value"),
    "title-rtl-text": ('{"title": "\u05e9\u05dc\u05d5\u05dd"}'.encode(), 200, None),
    "unknown-fields": (b'{"foo": 1, "bar": [1, 2]}', 200, None),
    "empty-object": (b"{}", 200, None),
    "null": (b"null", 200, None),
    "empty-body": (b"", 200, None),
    "whitespace-body": (b"  \n ", 200, None),
}.items():
    case("json", f"store-put-{name}", "PUT", SCRATCH, status, etype, body=body)
for name, (body, status, etype) in {
    "schema-list": (b'{"schema": []}', 400, "invalid-value"),
    "schema-string": (b'{"schema": "x"}', 400, "invalid-value"),
    "schema-number": (b'{"schema": 1}', 400, "invalid-value"),
    "name-number": (b'{"name": 5}', 400, "invalid-value"),
    "name-list": (b'{"name": ["x"]}', 400, "invalid-value"),
    "schema-object": (b'{"schema": {"collections": {"c": {"keyPrefix": "a"}}}}', 201, None),
    "schema-odd-collections": (b'{"schema": {"collections": [1, 2]}}', 201, None),
    # Nested past what the JSON encoder takes: once stored, then a 500 on every answer showing the store.
    "schema-deep-300": (b'{"schema": {"a": ' + b"[" * 300 + b"]" * 300 + b"}}", 400, "invalid-value"),
    "schema-deep-250": (b'{"schema": {"a": ' + b"[" * 250 + b"]" * 250 + b"}}", 400, "invalid-value"),
    "schema-deep-1000": (b'{"schema": {"a": ' + b"[" * 1000 + b"]" * 1000 + b"}}", 400, "invalid-value"),
    "schema-deep-64": (b'{"schema": {"a": ' + b"[" * 63 + b"]" * 63 + b"}}", 201, None),
    "schema-deep-65": (b'{"schema": {"a": ' + b"[" * 64 + b"]" * 64 + b"}}", 400, "invalid-value"),
}.items():
    case("json", f"store-post-{name}", "POST", "/key-value-stores", status, etype, body=body)
for name, (body, status, etype) in {
    "empty-object": (b"{}", 400, "invalid-value"),
    "access-bad": (b'{"access": "ADMIN"}', 400, "invalid-value"),
    "access-number": (b'{"access": 1}', 400, "invalid-value"),
    "access-null": (b'{"access": null}', 400, "invalid-value"),
    "access-list": (b'{"access": ["READ"]}', 400, "invalid-value"),
    "empty-body": (b"", 400, "invalid-value"),
    "access-lower": (b'{"access": "write"}', 200, None),
}.items():
    case("json", f"share-put-{name}", "PUT", SCRATCH + "/shares/bob", status, etype, body=body)
case(
    "json",
    "share-unknown-user",
    "PUT",
    SCRATCH + "/shares/nobody",
    404,
    "user-not-found",
    body=b'{"access": "READ"}',
)
case("json", "share-self", "PUT", SCRATCH + "/shares/admin", 400, "invalid-value", body=b'{"access": "READ"}')
# A username holding NUL names nobody (PostgreSQL is not asked: its text cannot hold NUL).
for name in ("%00", "bob%00"):
    case("json", f"share-user-nul-put-{name}", "PUT", SCRATCH + f"/shares/{name}", 404, "user-not-found",
         body=b'{"access": "READ"}')  # fmt: skip
    case(
        "json", f"share-user-nul-delete-{name}", "DELETE", SCRATCH + f"/shares/{name}", 404, "user-not-found"
    )
case(
    "json",
    "share-user-ff",
    "PUT",
    SCRATCH + "/shares/%FF",
    400,
    "invalid-request",
    body=b'{"access": "READ"}',
)
case(
    "json",
    "collection-on-odd-schema",
    "GET",
    "/key-value-stores/~hostile-odd/keys?collection=c",
    400,
    "invalid-value",
)

case(
    "json", "rename-onto-taken-name", "PUT", SCRATCH, 409, "name-not-unique", body=b'{"name": "hostile-seed"}'
)


# --- the table, one case at a time and then all at once


@pytest.mark.parametrize("c", TABLE.cases, ids=TABLE.ids)
def test_case(hostile: Hostile, c: Case) -> None:
    check_case(hostile, c)


def test_whole_table_concurrently_leaves_the_seed_unchanged(tmp_path: Path, engine: Engine) -> None:
    """The table again, eight requests at a time on a server of its own: the rules hold, the seeded store is
    unchanged after it, and nothing was logged as an unexpected error."""
    check_table_leaves_kv_seed_unchanged(tmp_path, TABLE.cases, engine)


BOMB_CAP = 768 * MIB


def gzip_members(total: int) -> bytes:
    """A gzip body that decodes to `total` zero bytes: 1 MiB members, one after another (cheap to build)."""
    member = gzip.compress(b"\0" * MIB)
    return member * (total // MIB)


@pytest.fixture(scope="module")
def bomb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("bombs") / "data",
        env={"SATCHEL_MAX_RECORD_BYTES": str(16 * MIB), "SATCHEL_MAX_DECODED_BYTES": str(BOMB_CAP)},
    )
    yield server
    stop_server(server)


def test_zip_bomb_upload_is_capped(bomb_server: Server) -> None:
    """10 MiB of gzip that claims 10 GiB: decoding stops at the cap, 413, memory flat."""
    bomb = gzip_members(10 * 1024 * MIB)
    assert len(bomb) < 12 * MIB
    with bomb_server.client() as http, PeakRss(bomb_server.pid) as rss:
        store = http.post("/key-value-stores", params={"name": "bombs"}).json()["data"]
        response = http.put(
            f"/key-value-stores/{store['id']}/records/bomb",
            content=bomb,
            headers={"content-encoding": "gzip", "content-type": "application/octet-stream"},
        )
        assert response.status_code == 413, response.text
        assert response.json()["error"]["type"] == "record-too-large"
        assert http.get(f"/key-value-stores/{store['id']}/records/bomb").status_code == 404
    print(f"\n10 GiB gzip bomb upload: server memory grew {rss.growth / MIB:.0f} MiB")
    assert rss.growth < 150 * MIB, rss.growth


def test_bomb_read_back_streams_in_bounded_memory(bomb_server: Server) -> None:
    """A record that decodes to 512 MiB, read without Accept-Encoding: decoded as it streams, never held."""
    nominal = 512 * MIB
    bomb = gzip_members(nominal)
    with bomb_server.client() as http:
        store = http.post("/key-value-stores", params={"name": "bomb-read"}).json()["data"]
        path = f"/key-value-stores/{store['id']}/records/bomb"
        put = http.put(path, content=bomb, headers={"content-encoding": "gzip", "content-type": "text/plain"})
        assert put.status_code == 201, put.text
        # The stored bytes, as sent, to a client that takes gzip.
        with http.stream("GET", path, headers={"accept-encoding": "gzip"}) as stored:
            assert stored.headers["content-encoding"] == "gzip"
            assert sum(len(chunk) for chunk in stored.iter_raw()) == len(bomb)
        with PeakRss(bomb_server.pid) as rss:
            with http.stream("GET", path, headers={"accept-encoding": "identity"}) as response:
                assert response.status_code == 200
                assert "content-encoding" not in response.headers
                assert int(response.headers["content-length"]) == nominal
                seen = 0
                for chunk in response.iter_raw():
                    seen += len(chunk)
                    if seen > 16 * MIB and seen - len(chunk) <= 16 * MIB:
                        time.sleep(1)  # a slow reader: the server must wait, not buffer the rest
                assert seen == nominal
            # The ZIP of all records decodes it too; a client that hangs up half-way frees the server.
            with http.stream("GET", f"/key-value-stores/{store['id']}/records") as response:
                assert response.status_code == 200
                for n, _ in enumerate(response.iter_raw()):
                    if n > 50:
                        break
        print(f"\n512 MiB bomb read back and zipped: server memory grew {rss.growth / MIB:.0f} MiB")
        assert rss.growth < 200 * MIB, rss.growth
        assert http.put(f"{path}-small", content=b"ok").status_code == 201
        assert http.get(f"{path}-small").content == b"ok"
    log = (bomb_server.data_dir.parent / f"server-{bomb_server.base_url.rsplit(':', 1)[1]}.log").read_text()
    assert "unexpected error" not in log, log[-3000:]


def brotli_bomb(total: int) -> bytes:
    """A brotli body of a few KiB that decodes to `total` zero bytes: one chunk on the wire, gigabytes out."""
    compressor = brotli.Compressor(quality=3)
    block = b"\0" * (4 * MIB)
    body: bytes = (
        b"".join(compressor.process(block) for _ in range(total // len(block))) + compressor.finish()
    )
    return body


def test_a_compression_bomb_holds_back_no_other_request(tmp_path: Path) -> None:
    """4 GiB of zeros in 6 KiB of brotli, under the default decoded cap: it decodes for seconds, and meanwhile
    the same server process answers another client's write at once. Decoded on the event loop, it held every
    request back until it was done, and the writes that waited were refused as if the process had stopped."""
    bomb = brotli_bomb(4096 * MIB)
    assert len(bomb) < 64 * 1024
    server = start_server(tmp_path / "data")
    try:
        with server.client() as http:
            store = http.post("/key-value-stores", params={"name": "bombed"}).json()["data"]["id"]
        done: dict[str, tuple[int, float]] = {}

        def put(name: str, body: bytes, headers: dict[str, str]) -> None:
            with server.client() as http:
                answer = http.put(f"/key-value-stores/{store}/records/{name}", content=body, headers=headers)
            done[name] = (answer.status_code, time.monotonic())

        encoded = {"content-encoding": "br", "content-type": "application/octet-stream"}
        bombing = threading.Thread(target=put, args=("bomb", bomb, encoded))
        bombing.start()
        time.sleep(0.5)  # the bomb is being decoded
        put("small", b"v", {"content-type": "text/plain"})
        bombing.join(timeout=120)
        assert done["small"][0] == 201
        assert done["bomb"][0] == 201  # under the cap: stored as sent
        # The small write was answered while the bomb was still decoding, not after it.
        assert done["bomb"][1] - done["small"][1] > 1.0, done
        log = (server.data_dir.parent / f"server-{server.base_url.rsplit(':', 1)[1]}.log").read_text()
        assert "did not run" not in log, log[-2000:]
    finally:
        stop_server(server)


def test_a_reader_leaving_a_decoded_bomb_early_holds_back_no_other_request(tmp_path: Path) -> None:
    """The same bomb, stored (inline: it is small) and read back decoded by a client that hangs up after a
    megabyte. Its sends no longer wait once it has gone, so a decoding on the event loop ran on to the end, 4
    GiB, and held the process back for seconds; the writes that waited were refused."""
    bomb = brotli_bomb(4096 * MIB)
    server = start_server(tmp_path / "data")
    try:
        with server.client() as http:
            store = http.post("/key-value-stores", params={"name": "bomb-read"}).json()["data"]["id"]
            path = f"/key-value-stores/{store}/records/bomb"
            encoded = {"content-encoding": "br", "content-type": "application/octet-stream"}
            assert http.put(path, content=bomb, headers=encoded).status_code == 201
            for download in (path, f"/key-value-stores/{store}/records"):  # the record, and the ZIP of all
                with http.stream("GET", download, headers={"accept-encoding": "identity"}) as answer:
                    assert answer.status_code == 200
                    read = 0
                    for chunk in answer.iter_raw():
                        read += len(chunk)
                        if read > MIB:
                            break  # and the connection closes
                began = time.monotonic()
                with server.client() as other:
                    assert (
                        other.put(f"/key-value-stores/{store}/records/small", content=b"v").status_code == 201
                    )
                assert time.monotonic() - began < 2.0  # answered, not held back behind the rest of 4 GiB
        log = (server.data_dir.parent / f"server-{server.base_url.rsplit(':', 1)[1]}.log").read_text()
        assert "did not run" not in log, log[-2000:]
    finally:
        stop_server(server)
