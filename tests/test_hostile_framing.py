"""Hostile framing: Content-Length that disagrees with the body, broken chunking, garbage request lines,
pipelining, abandoned uploads and slow clients, each sent byte for byte over a raw socket to a seeded server
(tests/harness/hostile.py holds the client and the rule)."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from tests.harness.hostile import (
    MAX_RECORD,
    REPLY_TIMEOUT,
    Case,
    Engine,
    Hostile,
    Table,
    check_case,
    check_table_leaves_kv_seed_unchanged,
    exchange,
)

TABLE = Table()
case = TABLE.case

# Content-Length that disagrees with the body, broken framing, and slow clients (raw sockets).
HEAD_PUT = (
    b"PUT /v2/key-value-stores/{scratch}/records/framing HTTP/1.1\r\nHost: x\r\n"
    b"Authorization: Bearer {token}\r\n"
)
case(
    "content-length", "shorter-than-body", "PUT", "", 201, raw=HEAD_PUT + b"Content-Length: 3\r\n\r\nabcdefgh"
)
case(
    "content-length",
    "longer-then-close",
    "PUT",
    "",
    400,
    "invalid-request",
    half_close=True,
    raw=HEAD_PUT + b"Content-Length: 100\r\n\r\nabc",
)
case(
    "content-length",
    "not-a-number",
    "PUT",
    "",
    400,
    envelope=False,
    raw=HEAD_PUT + b"Content-Length: abc\r\n\r\nabc",
)
case(
    "content-length",
    "negative",
    "PUT",
    "",
    400,
    envelope=False,
    raw=HEAD_PUT + b"Content-Length: -3\r\n\r\nabc",
)
case(
    "content-length",
    "exponent",
    "PUT",
    "",
    400,
    envelope=False,
    raw=HEAD_PUT + b"Content-Length: 3e0\r\n\r\nabc",
)
case(
    "content-length",
    "conflicting",
    "PUT",
    "",
    400,
    envelope=False,
    raw=HEAD_PUT + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
)
case(
    "content-length",
    "overflow",
    "PUT",
    "",
    400,
    envelope=False,
    raw=HEAD_PUT + b"Content-Length: 99999999999999999999999\r\n\r\nabc",
)
case(
    "content-length",
    "bad-chunk-size",
    "PUT",
    "",
    400,
    envelope=False,
    raw=HEAD_PUT + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
)
case(
    "content-length",
    "chunk-too-long",
    "PUT",
    "",
    400,
    envelope=False,
    raw=HEAD_PUT + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n",
)
case(
    "content-length",
    "chunked-unterminated",
    "PUT",
    "",
    400,
    "invalid-request",
    half_close=True,
    raw=HEAD_PUT + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
)
case(
    "content-length",
    "unknown-transfer-encoding",
    "PUT",
    "",
    400,
    envelope=False,
    half_close=True,
    raw=HEAD_PUT + b"Transfer-Encoding: gzip\r\n\r\nabc",
)
case("content-length", "zero-with-body", "PUT", "", 201, raw=HEAD_PUT + b"Content-Length: 0\r\n\r\nabc")
case(
    "content-length",
    "get-with-body",
    "GET",
    "",
    200,
    raw=b"GET /v2/key-value-stores/{sid}/records/k1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    b"Authorization: Bearer {token}\r\nContent-Length: 5\r\n\r\nhello",
)
case(
    "content-length",
    "http10-put",
    "PUT",
    "",
    201,
    raw=b"PUT /v2/key-value-stores/{scratch}/records/framing10 HTTP/1.0\r\nAuthorization: Bearer {token}\r\n"
    b"Content-Length: 3\r\n\r\nabc",
)
case(
    "content-length",
    "expect-continue-over-limit",
    "PUT",
    "",
    413,
    "record-too-large",
    raw=HEAD_PUT + b"Expect: 100-continue\r\nContent-Length: " + str(MAX_RECORD + 1).encode() + b"\r\n\r\n",
)
case(
    "content-length",
    "expect-continue-json-over-limit",
    "PUT",
    "",
    413,
    "request-too-large",
    raw=b"PUT /v2/key-value-stores/{scratch} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
    b"Expect: 100-continue\r\nContent-Length: 2000000\r\n\r\n",
)
case(
    "content-length",
    "expect-continue-ok",
    "PUT",
    "",
    201,
    raw=HEAD_PUT + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
)
case(
    "content-length",
    "chunk-extension",
    "PUT",
    "",
    201,
    raw=HEAD_PUT + b"Transfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n0\r\n\r\n",
)
case(
    "content-length",
    "chunk-trailer",
    "PUT",
    "",
    201,
    raw=HEAD_PUT + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
)
case(
    "content-length",
    "chunk-size-huge",
    "PUT",
    "",
    400,
    envelope=False,
    raw=HEAD_PUT + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n",
)
case(
    "content-length",
    "chunked-over-limit-declared-small",
    "PUT",
    "",
    413,
    "record-too-large",
    raw=HEAD_PUT + b"Transfer-Encoding: chunked\r\n\r\n" + b"300000\r\n" + b"f" * 0x300000 + b"\r\n0\r\n\r\n",
)
case(
    "content-length",
    "gzip-then-chunked",  # the server only unchunks: stored, the body would be gzip the client never meant
    "PUT",
    "",
    400,
    "unsupported-transfer-encoding",
    raw=HEAD_PUT + b"Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
)
case(
    "content-length",
    "websocket-upgrade",  # nothing here speaks WebSocket: answered as the plain GET it also is
    "GET",
    "",
    404,
    "record-not-found",
    raw=b"GET /v2/key-value-stores/{scratch}/records/no-such-record HTTP/1.1\r\nHost: x\r\n"
    b"Authorization: Bearer {token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
)
case(
    "content-length",
    "garbage-request-line",
    "GET",
    "",
    400,
    envelope=False,
    raw=b"\x00\x01\x02garbage\r\n\r\n",
)
case("content-length", "no-version", "GET", "", 400, envelope=False, raw=b"GET /v2/users/me\r\n\r\n")
case(
    "content-length",
    "bad-version",
    "GET",
    "",
    400,
    envelope=False,
    raw=b"GET /v2/users/me HTTP/9.9\r\nHost: x\r\n\r\n",
)


# --- the table, one case at a time and then all at once


@pytest.mark.parametrize("c", TABLE.cases, ids=TABLE.ids)
def test_case(hostile: Hostile, c: Case) -> None:
    check_case(hostile, c)


def test_whole_table_concurrently_leaves_the_seed_unchanged(tmp_path: Path, engine: Engine) -> None:
    """The table again, eight requests at a time on a server of its own: the rules hold, the seeded store is
    unchanged after it, and nothing was logged as an unexpected error."""
    check_table_leaves_kv_seed_unchanged(tmp_path, TABLE.cases, engine)


def test_content_length_shorter_than_body_stores_only_what_was_declared(hostile: Hostile) -> None:
    scratch = hostile.values["scratch"]
    request = (
        f"PUT /v2/key-value-stores/{scratch}/records/short HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {hostile.tokens['admin']}\r\nContent-Length: 3\r\n\r\nabcdefgh"
    ).encode()
    assert exchange(hostile.port, request).status == 201
    with hostile.server.client() as http:
        assert http.get(f"/key-value-stores/{scratch}/records/short").content == b"abc"


def test_abandoned_upload_leaves_no_temporary_file(hostile: Hostile, engine: Engine) -> None:
    """A client that hangs up half-way through a large body: nothing stored, nothing left behind. (Over S3
    the body streams into a multipart upload, not a temporary file; tests/test_blob_stores.py shows it
    aborted.)"""
    spooled = engine.combo.endswith("+files")
    scratch = hostile.values["scratch"]
    tmp_root = hostile.server.data_dir / "blobs" / "tmp"
    head = (
        f"PUT /v2/key-value-stores/{scratch}/records/abandoned HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {hostile.tokens['admin']}\r\nContent-Length: {MAX_RECORD}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", hostile.port), timeout=REPLY_TIMEOUT) as sock:
        sock.sendall(head + b"x" * (MAX_RECORD // 2))
        time.sleep(0.5)  # past the inline size: the body is spooling to a temporary file by now
        assert any(p.is_file() for p in tmp_root.rglob("*")) or not spooled
    deadline = time.monotonic() + 10
    while any(p.is_file() for p in tmp_root.rglob("*")):
        assert time.monotonic() < deadline, list(tmp_root.rglob("*"))
        time.sleep(0.1)
    with hostile.server.client() as http:
        assert http.get(f"/key-value-stores/{scratch}/records/abandoned").status_code == 404


def test_pipelined_requests_are_each_answered(hostile: Hostile) -> None:
    auth = f"Authorization: Bearer {hostile.tokens['admin']}\r\n"
    one = f"GET /v2/users/me HTTP/1.1\r\nHost: x\r\n{auth}\r\n"
    bad = "GET /v2/key-value-stores/x/records/a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n"
    last = f"GET /v2/users/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n"
    with socket.create_connection(("127.0.0.1", hostile.port), timeout=REPLY_TIMEOUT) as sock:
        sock.sendall((one + bad + last).encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"200", b"400", b"200"], data[:2000]


def test_slow_clients_do_not_block_others(hostile: Hostile) -> None:
    """Connections that stall mid-headers or mid-body hold nothing another request needs."""
    scratch = hostile.values["scratch"]
    auth = f"Authorization: Bearer {hostile.tokens['admin']}\r\n".encode()
    stalled = []
    try:
        for i in range(60):
            sock = socket.create_connection(("127.0.0.1", hostile.port), timeout=5)
            if i % 2:
                sock.sendall(b"GET /v2/users/me HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # headers never end
            else:
                sock.sendall(
                    f"PUT /v2/key-value-stores/{scratch}/records/slow{i} HTTP/1.1\r\nHost: x\r\n".encode()
                    + auth
                    + b"Content-Length: 1000\r\n\r\nonly-part"
                )
            stalled.append(sock)
        started = time.monotonic()
        with hostile.server.client() as http:
            assert http.get("/users/me").status_code == 200
        assert time.monotonic() - started < 5
        # A body that trickles in, ten bytes at a time, is still taken whole.
        sock = socket.create_connection(("127.0.0.1", hostile.port), timeout=REPLY_TIMEOUT)
        body = b"0123456789" * 10
        sock.sendall(
            f"PUT /v2/key-value-stores/{scratch}/records/trickle HTTP/1.1\r\nHost: x\r\n".encode()
            + b"Connection: close\r\n"
            + auth
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        for i in range(0, len(body), 10):
            sock.sendall(body[i : i + 10])
            time.sleep(0.05)
        assert sock.recv(100).startswith(b"HTTP/1.1 201")
        sock.close()
    finally:
        for sock in stalled:
            sock.close()
    with hostile.server.client() as http:
        assert http.get(f"/key-value-stores/{scratch}/records/trickle").content == body
        # The stalled uploads stored nothing.
        assert http.get(f"/key-value-stores/{scratch}/records/slow0").status_code == 404
