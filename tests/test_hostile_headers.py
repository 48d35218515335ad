"""Hostile input in the headers: Content-Type, Content-Encoding (unknown, lying, repeated, bombs), huge
headers and query strings, Accept-Encoding forms. Sent over a raw socket to a seeded server, each case with
the status and error type it must get (tests/harness/hostile.py holds the client and the rule)."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import brotli
import orjson
import pytest

from tests.harness.hostile import (
    JSON_ROUTES,
    REC,
    SCRATCH,
    SCRATCH_REC,
    STORE,
    TEXT,
    Case,
    Engine,
    Hostile,
    Table,
    build,
    check_case,
    check_table_leaves_kv_seed_unchanged,
    exchange,
)

TABLE = Table()
case = TABLE.case

# Content-Type: a record keeps what was sent; a value that cannot be a header value is refused.

for name, (ctype, status, etype) in {
    "missing": (None, 201, None),
    "empty": ("", 201, None),
    "spaces": ("   ", 201, None),
    "long-255": ("a/" + "b" * 253, 201, None),
    "long-256": ("a/" + "b" * 254, 400, "invalid-request"),
    "long-10k": ("a/" + "b" * 10000, 400, "invalid-request"),
    "control-char": ("text/plain\x01", 400, None),  # refused by the HTTP server: no envelope
    "tab-inside": ("text/plain;\tcharset=utf-8", 400, "invalid-request"),
    "latin1": ("text/caf\xe9", 201, None),
    "no-slash": ("garbage", 201, None),
    "html": ("text/html", 201, None),
    "multipart": ("multipart/form-data; boundary=x", 201, None),
}.items():
    hdrs = () if ctype is None else (("Content-Type", ctype),)
    kw = {"envelope": etype is not None}
    case(
        "content-type",
        f"record-{name}",
        "PUT",
        SCRATCH_REC + f"ct-{name}",
        status,
        etype,
        headers=hdrs,
        body=b"body",
        **kw,
    )
    if status == 400:
        case(
            "content-type",
            f"seed-{name}",
            "PUT",
            REC + "k1",
            status,
            etype,
            headers=hdrs,
            body=b"changed",
            **kw,
        )
for route, (method, target) in JSON_ROUTES.items():
    good = orjson.dumps({"access": "READ"} if route == "share-put" else {"title": "t"})
    ok = 201 if route == "store-post" else 200
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/octet-stream"):
        case(
            "content-type",
            f"{route}-{ctype}",
            method,
            target,
            ok,
            headers=(("Content-Type", ctype),),
            body=good,
        )
    case(
        "content-type",
        f"{route}-form-body",
        method,
        target,
        400,
        "invalid-request",
        headers=(("Content-Type", "application/x-www-form-urlencoded"),),
        body=b"name=x&access=READ",
    )
    case("content-type", f"{route}-no-type", method, target, ok, body=good)

# Content-Encoding: unknown encodings are 415; bodies that lie about theirs 400; bombs are capped (413).

GZ = gzip.compress(TEXT)
DEFL = zlib.compress(TEXT)
BR = brotli.compress(TEXT)
UNKNOWN_ENCODINGS = [
    "compress", "x-compress", "zstd", "gzip, br", "gzip,gzip", "*", "chunked", "foo", "gzip;q=1",
    "identity, gzip", "br gzip", "x-deflate", "lzma", "bzip2", "aes128gcm", "exi", "pack200-gzip", "gzip;",
    "br;q=0", "deflate, identity", "identity;q=1",
]  # fmt: skip
for i, encoding in enumerate(UNKNOWN_ENCODINGS):
    case(
        "content-encoding",
        f"unknown{i}-record",
        "PUT",
        REC + "k1",
        415,
        "unsupported-content-encoding",
        headers=(("Content-Encoding", encoding),),
        body=GZ,
    )
case(
    "content-encoding",
    "nul-in-header",
    "PUT",
    REC + "k1",
    400,
    headers=(("Content-Encoding", "gzip\x00"),),
    body=GZ,
    envelope=False,
)
for route, (method, target) in JSON_ROUTES.items():
    for encoding in ("zstd", "compress", "gzip, gzip"):
        case(
            "content-encoding",
            f"unknown-{route}-{encoding}",
            method,
            target,
            415,
            "unsupported-content-encoding",
            headers=(("Content-Encoding", encoding),),
            body=gzip.compress(b"{}"),
        )
LIES = {
    "gzip-random": ("gzip", os.urandom(64)),
    "gzip-plain-text": ("gzip", TEXT),
    "gzip-truncated": ("gzip", GZ[: len(GZ) // 2]),
    "gzip-header-only": ("gzip", GZ[:10]),
    "gzip-bad-crc": ("gzip", GZ[:-8] + b"\0\0\0\0" + GZ[-4:]),
    "gzip-bad-length": ("gzip", GZ[:-4] + b"\xff\xff\xff\x7f"),
    "gzip-trailing-garbage": ("gzip", GZ + b"garbage!"),
    "gzip-of-brotli": ("gzip", BR),
    "deflate-random": ("deflate", b"\xff" * 64),
    "deflate-truncated": ("deflate", DEFL[: len(DEFL) // 2]),
    "deflate-trailing-garbage": ("deflate", DEFL + b"garbage!"),
    "deflate-bad-adler": ("deflate", DEFL[:-4] + b"\0\0\0\0"),
    "br-random": ("br", os.urandom(64)),
    "br-truncated": ("br", BR[: len(BR) // 2]),
    "br-trailing-garbage": ("br", BR + b"garbage!"),
    "br-of-gzip": ("br", GZ),
    "br-plain": ("br", TEXT),
    "xgzip-random": ("x-gzip", b"\x1f\x8b" + os.urandom(40)),
}
for name, (encoding, body) in LIES.items():
    case(
        "content-encoding",
        f"lie-{name}",
        "PUT",
        REC + "k1",
        400,
        "invalid-value",
        headers=(("Content-Encoding", encoding),),
        body=body,
    )
for route, (method, target) in JSON_ROUTES.items():
    for name in ("gzip-random", "br-truncated", "deflate-random"):
        encoding, body = LIES[name]
        case(
            "content-encoding",
            f"lie-{route}-{name}",
            method,
            target,
            400,
            "invalid-value",
            headers=(("Content-Encoding", encoding),),
            body=body,
        )
for name, (encoding, body) in {
    "gzip": ("gzip", GZ),
    "gzip-upper": ("GZIP", GZ),
    "x-gzip": ("x-gzip", GZ),
    "gzip-spaces": (" gzip ", GZ),
    "gzip-tabs": ("\tgzip\t", GZ),
    "gzip-multi-member": ("gzip", GZ + GZ),
    # Members that each decode past one decoding step (256 KiB): once made the decoder double its input.
    "gzip-multi-member-large": ("gzip", gzip.compress(b"\0" * (1 << 20)) * 5),
    "deflate-zlib": ("deflate", DEFL),
    "deflate-raw": ("deflate", zlib.compress(TEXT, wbits=-15)),
    "br": ("br", BR),
    "identity": ("identity", TEXT),
    "identity-upper": ("IDENTITY", TEXT),
    "empty-header": ("", TEXT),
}.items():
    case(
        "content-encoding",
        f"ok-{name}",
        "PUT",
        SCRATCH_REC + f"enc-{name}",
        201,
        headers=(("Content-Encoding", encoding),),
        body=body,
    )
# Nothing is no gzip data: refused, not stored as a record no reader could decode.
case(
    "content-encoding",
    "gzip-empty-body",
    "PUT",
    SCRATCH_REC + "enc-gzip-empty-body",
    400,
    headers=(("Content-Encoding", "gzip"),),
    body=b"",
)
case(
    "content-encoding",
    "ok-store-put-gzip",
    "PUT",
    SCRATCH,
    200,
    headers=(("Content-Encoding", "gzip"),),
    body=gzip.compress(b'{"title": "zipped"}'),
)


def _bomb(encoding: str, size: int) -> bytes:
    zeros = b"\0" * (1 << 20)
    if encoding == "br":
        comp = brotli.Compressor(quality=1)
        parts: list[bytes] = [comp.process(zeros) for _ in range(size >> 20)]
        return b"".join([*parts, comp.finish()])
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    parts = [compressor.compress(zeros) for _ in range(size >> 20)]
    return b"".join(parts) + compressor.flush()


for encoding in ("gzip", "deflate", "br"):
    bomb = _bomb(encoding, 64 << 20)
    case(
        "content-encoding",
        f"bomb-{encoding}-seed",
        "PUT",
        REC + "k1",
        413,
        "record-too-large",
        headers=(("Content-Encoding", encoding),),
        body=bomb,
    )
    case(
        "content-encoding",
        f"bomb-{encoding}-scratch",
        "PUT",
        SCRATCH_REC + "bomb",
        413,
        "record-too-large",
        headers=(("Content-Encoding", encoding),),
        body=bomb,
    )
    case(
        "content-encoding",
        f"bomb-{encoding}-json",
        "PUT",
        SCRATCH,
        413,
        "request-too-large",
        headers=(("Content-Encoding", encoding),),
        body=bomb,
    )
case("content-encoding", "bomb-absent-after", "GET", SCRATCH_REC + "bomb", 404, "record-not-found")

# Huge headers and query strings: 431, 414 or 400, never 500.
case("headers-query", "header-64k", "GET", "/users/me", 200, headers=(("X-Big", "a" * 65536),))
case(
    "headers-query",
    "many-headers",
    "GET",
    "/users/me",
    431,
    envelope=False,
    headers=tuple((f"X-H{i}", "v") for i in range(2000)),
)
case("headers-query", "url-100k", "GET", "/key-value-stores/" + "a" * 100000, 414, envelope=False)
case("headers-query", "query-17k", "GET", STORE + "/keys?prefix=" + "a" * 17000, 400, "invalid-request")
case("headers-query", "query-16k", "GET", STORE + "/keys?prefix=" + "a" * 16000, 200)
case("headers-query", "query-many-params", "GET", STORE + "/keys?" + "&".join(["a"] * 5000), 200)
case("headers-query", "query-repeated-limit", "GET", STORE + "/keys?limit=1&limit=2&limit=3", 200)
case(
    "headers-query",
    "auth-64k",
    "GET",
    "/users/me",
    401,
    "invalid-token",
    token=None,
    headers=(("Authorization", "Bearer " + "x" * 65536),),
)
case(
    "headers-query",
    "content-type-10k",
    "PUT",
    REC + "k1",
    400,
    "invalid-request",
    headers=(("Content-Type", "a" * 10000),),
    body=b"x",
)
case(
    "headers-query",
    "accept-encoding-50k",
    "GET",
    REC + "gz",
    200,
    headers=(("Accept-Encoding", "x, " * 16000),),
)
case(
    "headers-query",
    "accept-encoding-bad-q",
    "GET",
    REC + "gz",
    200,
    headers=(("Accept-Encoding", "gzip;q=abc"),),
)
case(
    "headers-query",
    "content-encoding-10k",
    "PUT",
    REC + "k1",
    415,
    "unsupported-content-encoding",
    headers=(("Content-Encoding", "g" * 10000),),
    body=b"x",
)
case("headers-query", "header-nul", "GET", "/users/me", 400, envelope=False, headers=(("X-A", "a\x00b"),))
case(
    "headers-query",
    "header-name-space",
    "GET",
    "",
    400,
    envelope=False,
    raw=b"GET /v2/users/me HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
)
case(
    "headers-query",
    "header-no-colon",
    "GET",
    "",
    400,
    envelope=False,
    raw=b"GET /v2/users/me HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n",
)
case(
    "headers-query",
    "obs-fold",
    "GET",
    "",
    400,
    envelope=False,
    raw=b"GET /v2/users/me HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
)
case(
    "headers-query",
    "no-host",
    "GET",
    "",
    200,
    raw=b"GET /v2/users/me HTTP/1.1\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n",
)
case(
    "headers-query",
    "latin1-authorization",
    "GET",
    "/users/me",
    401,
    "invalid-token",
    token=None,
    headers=(("Authorization", "Bearer caf\xe9"),),
)

# Two Content-Encoding lines are two encodings applied in turn (RFC 9110), not the first one alone.
case(
    "content-encoding",
    "two-header-lines",
    "PUT",
    REC + "k1",
    415,
    "unsupported-content-encoding",
    headers=(("Content-Encoding", "br"), ("Content-Encoding", "gzip")),
    body=brotli.compress(GZ),
)
case(
    "content-encoding",
    "two-header-lines-same",
    "PUT",
    REC + "k1",
    415,
    "unsupported-content-encoding",
    headers=(("Content-Encoding", "gzip"), ("Content-Encoding", "gzip")),
    body=GZ,
)
case(
    "content-encoding",
    "two-header-lines-json",
    "PUT",
    SCRATCH,
    415,
    "unsupported-content-encoding",
    headers=(("Content-Encoding", "gzip"), ("Content-Encoding", "br")),
    body=b"{}",
)


# --- the table, one case at a time and then all at once


@pytest.mark.parametrize("c", TABLE.cases, ids=TABLE.ids)
def test_case(hostile: Hostile, c: Case) -> None:
    check_case(hostile, c)


def test_whole_table_concurrently_leaves_the_seed_unchanged(tmp_path: Path, engine: Engine) -> None:
    """The table again, eight requests at a time on a server of its own: the rules hold, the seeded store is
    unchanged after it, and nothing was logged as an unexpected error."""
    check_table_leaves_kv_seed_unchanged(tmp_path, TABLE.cases, engine)


@pytest.mark.parametrize(
    ("accept", "sent_encoded"),
    [
        ("gzip", True),
        ("gzip;level=1;q=0.5", True),  # once read as q="0.5;level=1", unreadable, so 0: decoded
        ("gzip; q=0", False),
        ("gzip;q=abc", False),
        ("*;q=0.1", True),
        ("br, *;q=0", False),
        ("identity", False),
        ("x" * 5000 + ", gzip", True),
    ],
)
def test_accept_encoding_forms(hostile: Hostile, accept: str, sent_encoded: bool) -> None:
    sid = hostile.values["sid"]
    request = build(
        "GET",
        f"/v2/key-value-stores/{sid}/records/gz",
        [("Authorization", f"Bearer {hostile.tokens['admin']}"), ("Accept-Encoding", accept)],
    )
    reply = exchange(hostile.port, request)
    assert reply.status == 200
    assert (reply.headers.get("content-encoding") == "gzip") is sent_encoded
    assert (gzip.decompress(reply.body) if sent_encoded else reply.body) == TEXT
