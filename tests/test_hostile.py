"""Hostile input: hundreds of crafted requests, each with the status and error type it must get.

Every request goes over a raw socket, byte for byte as written here (httpx would normalise paths,
encodings and lengths), and its answer is read with h11. The rule for every case: a 4xx with the API's
error envelope (or the documented success), never a 5xx, never a hang. Around the table: records seeded
before are unchanged after, and the server still works. Cases are counted per category; `test_summary`
prints the counts (run with -s).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import brotli
import h11
import httpx
import orjson
import pytest

from satchel.service.signing import (
    expiring_record_signature,
    hmac_signature,
    record_signature,
    storage_signature,
)
from tests.conftest import Server, start_server, stop_server

MAX_RECORD = 2 * 1024 * 1024
MAX_DECODED = 16 * 1024 * 1024
SEED_NAME = "hostile-seed"
FORGED_TOKEN = "apify_api_" + "f" * 36
# A reply needs to come within this; a server that stalls on bad input fails the case rather than the run.
REPLY_TIMEOUT = 15.0


def enc(text: str) -> str:
    return quote(text, safe="")


# --- the raw client


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        data = orjson.loads(self.body)
        assert set(data) == {"error"}, data
        assert set(data["error"]) == {"type", "message"}, data
        assert isinstance(data["error"]["type"], str)
        assert data["error"]["type"]
        assert isinstance(data["error"]["message"], str)
        assert data["error"]["message"]
        return data["error"]  # type: ignore[no-any-return]


def exchange(port: int, data: bytes, *, head: bool = False, half_close: bool = False) -> Reply:
    """Send bytes as they are; read one response. The sending runs beside the reading, so a server that
    answers before the body is in (a 413) is heard rather than lost to a reset."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT)

    def send() -> None:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close early; its answer is what counts

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="HEAD" if head else "GET", target="/", headers=[("host", "x")]))
    conn.send(h11.EndOfMessage())
    status = 0
    headers: dict[str, str] = {}
    body = bytearray()
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                conn.receive_data(chunk)
                continue
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    except TimeoutError as exc:
        raise AssertionError(f"no complete answer within {REPLY_TIMEOUT} s") from exc
    finally:
        sock.close()
        sender.join(5)
    return Reply(status, headers, bytes(body))


def build(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    length: bool = True,
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if length and (body or method in ("PUT", "POST")):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


# --- the cases


@dataclass
class Case:
    category: str
    name: str
    method: str
    target: str  # after /v2 unless it starts with "//" (then taken as is, minus one slash); {names} filled in
    status: int
    type: str | None = None  # the error type; None for a success or an answer with no body
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    token: str | None = "admin"  # admin, bob, revoked, forged, or None for no token
    raw: bytes | None = None  # the whole request, bytes as they are ({names} filled in)
    envelope: bool = True  # False where the HTTP server itself refuses the bytes, before the app sees them
    half_close: bool = False

    @property
    def id(self) -> str:
        return f"{self.category}:{self.name}"


CASES: list[Case] = []


def case(category: str, name: str, method: str, target: str, status: int, type: str | None = None, **kw: Any):  # type: ignore[no-untyped-def]
    CASES.append(Case(category, name, method, target, status, type, **kw))


STORE = "/key-value-stores/{sid}"
SCRATCH = "/key-value-stores/{scratch}"
REC = STORE + "/records/"

# 1. Record keys: any character outside a-z A-Z 0-9 !-_.'() is refused, in every method; so are overlong keys.
BAD_KEY_CHARS = ' "#$%&*+,/:;<=>?@[\\]^`{|}~\t\n\r\x00\x01\x7féß日😀\u202e\ufeff'
for i, ch in enumerate(BAD_KEY_CHARS):
    target = REC + enc(f"a{ch}b")
    for method in ("GET", "PUT", "DELETE"):
        body = b"x" if method == "PUT" else b""
        case("record-key", f"char{i}-{method}", method, target, 400, "invalid-record-key", body=body)
    case("record-key", f"char{i}-POST", "POST", target, 400, "invalid-record-key", body=b"x")
for n in (257, 300, 1000, 4000):
    for method in ("GET", "PUT", "DELETE"):
        case("record-key", f"len{n}-{method}", method, REC + "a" * n, 400, "invalid-record-key")
case("record-key", "len256-put", "PUT", SCRATCH + "/records/" + "a" * 256, 201, body=b"ok")
case("record-key", "len256-get", "GET", SCRATCH + "/records/" + "a" * 256, 200)
case("record-key", "punctuation-put", "PUT", SCRATCH + "/records/" + enc("!-_.'()"), 201, body=b"ok")
case("record-key", "three-dots-put", "PUT", SCRATCH + "/records/...", 201, body=b"ok")
case("record-key", "absent", "GET", REC + "no-such-key", 404, "record-not-found")
case("record-key", "empty-put", "PUT", REC, 405, "method-not-allowed", body=b"x")
case("record-key", "empty-delete", "DELETE", REC, 405, "method-not-allowed")

# Store names: get-or-create and rename refuse what is not letters, digits and inner hyphens, up to 63.
BAD_NAMES = ["-a", "a-", "a_b", "a.b", "a b", "a~b", "a/b", "é", "a" * 64, "a" * 300, "-", "a\x00b", "'x'"]
for i, name in enumerate(BAD_NAMES):
    case("store-name", f"create{i}", "POST", f"/key-value-stores?name={enc(name)}", 400, "invalid-value")
    body = orjson.dumps({"name": name})
    case("store-name", f"rename{i}", "PUT", SCRATCH, 400, "invalid-value", body=body)
    case("store-name", f"create-body{i}", "POST", "/key-value-stores", 400, "invalid-value", body=body)
for i, ref in enumerate(
    ["~" + "a" * 64, "~-a", "~a_b", "~", "nobody~x", "~~", "a" * 5000, "x" * 17, "admin~"]
):
    case("store-name", f"ref{i}", "GET", f"/key-value-stores/{enc(ref)}", 404, "record-not-found")
case("store-name", "ref-by-name", "GET", f"/key-value-stores/~{SEED_NAME}", 200)
case("store-name", "ref-by-owner-name", "GET", f"/key-value-stores/admin~{SEED_NAME}", 200)
case("store-name", "ref-slash-separator", "GET", f"/key-value-stores/admin%2F{SEED_NAME}", 200)
case("store-name", "name-63", "POST", f"/key-value-stores?name={'b' * 63}", 201)

# 2. Percent-encoding: decoded one segment at a time, as UTF-8, after routing.
PCT_KEYS = {
    "dot": ("%2E", 400, "invalid-record-key"),
    "dotdot": ("%2E%2E", 400, "invalid-record-key"),
    "dotdot-lower": ("%2e%2e", 400, "invalid-record-key"),
    "dotdot-mixed": (".%2E", 400, "invalid-record-key"),
    "raw-dot": (".", 400, "invalid-record-key"),
    "raw-dotdot": ("..", 400, "invalid-record-key"),
    "slash": ("a%2Fb", 400, "invalid-record-key"),
    "slash-lower": ("a%2fb", 400, "invalid-record-key"),
    "dotdot-slash": ("%2E%2E%2F%2E%2E%2Fusers", 400, "invalid-record-key"),
    "backslash": ("..%5C..%5C", 400, "invalid-record-key"),
    "nul": ("%00", 400, "invalid-record-key"),
    "nul-suffix": ("k1%00", 400, "invalid-record-key"),
    "nul-suffix-json": ("k1%00.json", 400, "invalid-record-key"),
    "newline-suffix": ("k1%0A", 400, "invalid-record-key"),
    "ff": ("%FF", 400, "invalid-request"),
    "fe-ff": ("%FE%FF", 400, "invalid-request"),
    "overlong-dot": ("%C0%AE", 400, "invalid-request"),
    "overlong-slash": ("%C0%AF", 400, "invalid-request"),
    "overlong-nul": ("%C0%80", 400, "invalid-request"),
    "overlong-3byte": ("%E0%80%AE", 400, "invalid-request"),
    "surrogate": ("%ED%A0%80", 400, "invalid-request"),
    "beyond-unicode": ("%F4%90%80%80", 400, "invalid-request"),
    "truncated-utf8": ("a%E2%82", 400, "invalid-request"),
    "lone-continuation": ("%80", 400, "invalid-request"),
    "valid-utf8-rlo": ("%E2%80%AE", 400, "invalid-record-key"),
    "bare-percent": ("%", 400, "invalid-record-key"),
    "bad-hex": ("%G1", 400, "invalid-record-key"),
    "short-escape": ("a%2", 400, "invalid-record-key"),
    "double-encoded-dots": ("%252E%252E", 400, "invalid-record-key"),
    "double-encoded-slash": ("a%252Fb", 400, "invalid-record-key"),
    "encoded-letters-absent": ("%41%42", 404, "record-not-found"),
    "encoded-seed-key": ("k%31", 200, None),
    "encoded-quote": ("%27q%27", 404, "record-not-found"),
    "plus": ("a+b", 400, "invalid-record-key"),
}
for name, (key, status, etype) in PCT_KEYS.items():
    case("percent-encoding", f"get-{name}", "GET", REC + key, status, etype)
    if status == 400:
        case("percent-encoding", f"put-{name}", "PUT", REC + key, status, etype, body=b"x")
for name, (ref, status, etype) in {
    "store-ff": ("%FF", 400, "invalid-request"),
    "store-overlong": ("%C0%AE%C0%AE", 400, "invalid-request"),
    "store-nul": ("%00", 404, "record-not-found"),
    "store-encoded-name": ("~hostile%2Dseed", 200, None),
    "store-encoded-tilde": ("%7Ehostile-seed", 200, None),
    "store-dotdot": ("%2E%2E", 404, "record-not-found"),
}.items():
    case("percent-encoding", name, "GET", f"/key-value-stores/{ref}/keys", status, etype)
for name, (query, status, etype) in {
    "query-prefix-ff": ("prefix=%FF", 200, None),
    "query-prefix-nul": ("prefix=%00", 200, None),
    "query-start-nul": ("exclusiveStartKey=%00", 200, None),
    "query-start-overlong": ("exclusiveStartKey=%C0%AE", 200, None),
    "query-limit-encoded": ("limit=%31%30", 200, None),
    "query-limit-nul": ("limit=1%00", 400, "invalid-value"),
    "query-bare-percent": ("prefix=%", 200, None),
    "query-semicolon": ("limit=1;limit=2", 400, "invalid-value"),
}.items():
    case("percent-encoding", name, "GET", STORE + "/keys?" + query, status, etype)
case("percent-encoding", "user-ff", "GET", "/users/%FF", 400, "invalid-request")
case("percent-encoding", "user-nul", "GET", "/users/%00", 404, "user-not-found")
case("percent-encoding", "non-ascii-path", "GET", REC + "caf\xe9", 400, envelope=False)

# 3. Path traversal: dot segments are never resolved into another endpoint, and never reach the disk.
TRAVERSAL = {
    "up-to-users": (STORE + "/../../users/me", 404, "page-not-found"),
    "up-from-records": (REC + "../../keys", 404, "page-not-found"),
    "up-from-v2": ("//../v2/users/me", 404, "page-not-found"),
    "v2-dotdot": ("//v2/../v2/users/me", 404, "page-not-found"),
    "v2-dot": ("//v2/./users/me", 404, "page-not-found"),
    "double-slash": ("//v2//key-value-stores", 404, "page-not-found"),
    "empty-store": ("/key-value-stores//keys", 404, "record-not-found"),
    "record-dotdot": (REC + "..", 400, "invalid-record-key"),
    "record-dot": (REC + ".", 400, "invalid-record-key"),
    "etc-passwd": (REC + "..%2F..%2F..%2Fetc%2Fpasswd", 400, "invalid-record-key"),
    "etc-passwd-double": (REC + "..%252F..%252Fetc%252Fpasswd", 400, "invalid-record-key"),
    "blob-dir": (REC + "..%2Fblobs", 400, "invalid-record-key"),
    "sqlite-file": (REC + "..%2F..%2Fsatchel.db", 400, "invalid-record-key"),
    "windows": (REC + "..%5C..%5Cwin.ini", 400, "invalid-record-key"),
    "store-dotdot-raw": ("/key-value-stores/../users/me", 404, "page-not-found"),
    "store-dot-keys": ("/key-value-stores/./keys", 404, "record-not-found"),
    "absolute-file": ("//etc/passwd", 404, "page-not-found"),
    "extra-segment": (REC + "k1/..", 404, "page-not-found"),
    "trailing-dotdot": (STORE + "/keys/..", 404, "page-not-found"),
    "share-dotdot": (STORE + "/shares/..%2F..", 405, "method-not-allowed"),
}
for name, (target, status, etype) in TRAVERSAL.items():
    case("traversal", name, "GET", target, status, etype)
    if status == 400:
        case("traversal", f"{name}-put", "PUT", target, status, etype, body=b"x")
case(
    "traversal",
    "absolute-form",
    "GET",
    "",
    200,
    raw=b"GET http://127.0.0.1/v2/key-value-stores/{sid}/records/k1"
    b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n",
)
case(
    "traversal",
    "absolute-form-dotdot",
    "GET",
    "",
    404,
    "page-not-found",
    raw=b"GET http://127.0.0.1/v2/key-value-stores/../users/me HTTP/1.1\r\nHost: x\r\n"
    b"Connection: close\r\n\r\n",
)
case(
    "traversal",
    "asterisk",
    "GET",
    "",
    404,
    "page-not-found",
    raw=b"GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
)

# 4. Content-Type: a record keeps what was sent; a value that cannot be a header value is refused.
SCRATCH_REC = SCRATCH + "/records/"
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
JSON_ROUTES = {
    "store-put": ("PUT", SCRATCH),
    "store-post": ("POST", "/key-value-stores"),
    "share-put": ("PUT", SCRATCH + "/shares/bob"),
}
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

# 5. Content-Encoding: unknown encodings are 415; bodies that lie about theirs 400; bombs are capped (413).
TEXT = b"hello, hostile world " * 50
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
    "gzip-empty-body": ("gzip", b""),
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
        parts = [comp.process(zeros) for _ in range(size >> 20)]
        return b"".join(parts) + comp.finish()
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

# 6. Bodies over the record size limit (max_record_bytes, set low for this server) and the JSON body limit.
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
case("size", "big-after", "GET", SCRATCH_REC + "big", 200)
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

# 7. Content-Length that disagrees with the body, broken framing, and slow clients (raw sockets).
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

# 8. Huge headers and query strings: 431, 414 or 400, never 500.
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

# 9. JSON bodies that are not JSON, or not the shape an endpoint takes.
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

# 10. Limits and offsets out of range: refused (400 invalid-value) or clamped (documented), never a 500.
BAD_NUMBERS = ["-1", "-0.5", "abc", "1.5", "1e400", "inf", "-inf", "nan", "0x10", "1_000", " ", "+",
               "9" * 40, "18446744073709551616", "1e16", "١٢", "1,2"]  # fmt: skip
for i, value in enumerate(BAD_NUMBERS):
    case("pagination", f"keys-limit{i}", "GET", STORE + f"/keys?limit={enc(value)}", 400, "invalid-value")
    case(
        "pagination", f"stores-limit{i}", "GET", f"/key-value-stores?limit={enc(value)}", 400, "invalid-value"
    )
    case(
        "pagination",
        f"stores-offset{i}",
        "GET",
        f"/key-value-stores?offset={enc(value)}",
        400,
        "invalid-value",
    )
for name, query in {
    "keys-limit-0": "limit=0",
    "keys-limit-huge": "limit=1000000",
    "keys-limit-max-safe": "limit=9007199254740992",
    "keys-limit-float-whole": "limit=10.0",
    "keys-limit-exp": "limit=1e3",
    "keys-start-long": "exclusiveStartKey=" + "z" * 5000,
    "keys-start-unicode": "exclusiveStartKey=" + enc("日本"),
    "keys-start-bad-key": "exclusiveStartKey=" + enc("a/b"),
    "keys-prefix-like": "prefix=" + enc("%_"),
    "keys-prefix-quote": "prefix=" + enc("'; DROP TABLE records; --"),
    "keys-empty-params": "limit=&prefix=&exclusiveStartKey=",
}.items():
    case("pagination", name, "GET", STORE + "/keys?" + query, 200)
for name, query in {
    "stores-offset-huge": "offset=9007199254740992",
    "stores-limit-0": "limit=0",
    "stores-limit-huge": "limit=5000",
    "stores-desc-1": "desc=1",
    "stores-unnamed-0": "unnamed=0",
    "stores-ownership-shared": "ownership=sharedWithMe",
}.items():
    case("pagination", name, "GET", "/key-value-stores?" + query, 200)
for name, (query, etype) in {
    "stores-desc-maybe": ("desc=maybe", "invalid-value"),
    "stores-desc-2": ("desc=2", "invalid-value"),
    "stores-unnamed-yes": ("unnamed=yes", "invalid-value"),
    "stores-ownership-bad": ("ownership=mine", "invalid-value"),
    "stores-ownership-case": ("ownership=OWNEDBYME", "invalid-value"),
}.items():
    case("pagination", name, "GET", "/key-value-stores?" + query, 400, etype)
case("pagination", "keys-collection-unknown", "GET", STORE + "/keys?collection=nope", 400, "invalid-value")
case("pagination", "zip-collection-unknown", "GET", STORE + "/records?collection=nope", 400, "invalid-value")
case("pagination", "record-attachment-bad", "GET", REC + "k1?attachment=maybe", 400, "invalid-value")

# 11. Tokens: forged, malformed, revoked, somebody else's.
for name, (headers, query, token, status, etype) in {
    "forged": ((), "", "forged", 401, "invalid-token"),
    "revoked": ((), "", "revoked", 401, "invalid-token"),
    "other-user": ((), "", "bob", 404, "record-not-found"),
    "none": ((), "", None, 404, "record-or-token-not-found"),
    "bearer-empty": ((("Authorization", "Bearer "),), "", None, 404, "record-or-token-not-found"),
    "bearer-only": ((("Authorization", "Bearer"),), "", None, 404, "record-or-token-not-found"),
    "basic-scheme": (
        (("Authorization", "Basic YWRtaW46YWRtaW4="),),
        "",
        None,
        404,
        "record-or-token-not-found",
    ),
    "lowercase-scheme": ((("Authorization", "bearer {admin_token}"),), "", None, 200, None),
    "token-in-query": ((), "?token={admin_token}", None, 200, None),
    "forged-in-query": ((), "?token=" + FORGED_TOKEN, None, 401, "invalid-token"),
    "revoked-in-query": ((), "?token={revoked_token}", None, 401, "invalid-token"),
    "token-with-spaces": ((("Authorization", "Bearer  {admin_token}  "),), "", None, 200, None),
    "token-plus-junk": ((("Authorization", "Bearer {admin_token}x"),), "", None, 401, "invalid-token"),
    "token-truncated": ((("Authorization", "Bearer apify_api_"),), "", None, 401, "invalid-token"),
    "token-nul": ((), "?token=%00", None, 401, "invalid-token"),
    "token-ff": ((), "?token=%FF", None, 401, "invalid-token"),
    "two-auth-headers": (
        (("Authorization", "Bearer " + FORGED_TOKEN), ("Authorization", "Bearer {admin_token}")),
        "",
        None,
        401,
        "invalid-token",
    ),
    "header-beats-query": ((), "?token=" + FORGED_TOKEN, "admin", 200, None),
}.items():
    case("tokens", name, "GET", REC + "k1" + query, status, etype, headers=headers, token=token)
case("tokens", "forged-put", "PUT", REC + "k1", 401, "invalid-token", token="forged", body=b"changed")
case("tokens", "revoked-put", "PUT", REC + "k1", 401, "invalid-token", token="revoked", body=b"changed")
case("tokens", "anonymous-put", "PUT", REC + "k1", 401, "token-not-provided", token=None, body=b"changed")
case("tokens", "anonymous-delete", "DELETE", REC + "k1", 401, "token-not-provided", token=None)
case("tokens", "other-user-put", "PUT", REC + "k1", 404, "record-not-found", token="bob", body=b"changed")
case("tokens", "other-user-delete-store", "DELETE", STORE, 404, "record-not-found", token="bob")
case("tokens", "anonymous-me", "GET", "/users/me", 401, "token-not-provided", token=None)
case("tokens", "revoked-me", "GET", "/users/me", 401, "invalid-token", token="revoked")
case("tokens", "anonymous-list", "GET", "/key-value-stores", 401, "token-not-provided", token=None)
case(
    "tokens",
    "anonymous-tilde",
    "GET",
    f"/key-value-stores/~{SEED_NAME}",
    401,
    "token-not-provided",
    token=None,
)

# 12. Signatures: forged, for another record or store, malformed, expired; never a grant to write. One that
# grants nothing counts as none: the answer a missing store gets, so no one learns the store exists. Only a
# genuine one that has expired says so.
HIDDEN = "record-or-token-not-found"
for name, (target, status, etype) in {
    "record-valid": (REC + "k1?signature={sig_k1}", 200, None),
    "record-forged": (REC + "k1?signature=pcVagAsudj8dFqdlg7mG", 404, HIDDEN),
    "record-other-key": (REC + "k1?signature={sig_gz}", 404, HIDDEN),
    "record-other-store": (REC + "k1?signature={sig_k1_scratch}", 404, HIDDEN),
    "record-storage-sig": (REC + "k1?signature={sig_keys}", 404, HIDDEN),
    "record-long": (REC + "k1?signature=" + "a" * 5000, 404, HIDDEN),
    "record-nul": (REC + "k1?signature=%00", 404, HIDDEN),
    "record-ff": (REC + "k1?signature=%FF%FE", 404, HIDDEN),
    "record-empty": (REC + "k1?signature=", 404, "record-or-token-not-found"),
    "record-valid-head": (REC + "k1?signature={sig_k1}&method=HEAD", 200, None),
    "keys-valid": (STORE + "/keys?signature={sig_keys}", 200, None),
    "keys-unpadded": (STORE + "/keys?signature={sig_keys_unpadded}", 200, None),
    "keys-future": (STORE + "/keys?signature={sig_keys_future}", 200, None),
    "keys-expired": (STORE + "/keys?signature={sig_keys_expired}", 403, "invalid-signature"),
    "keys-other-store": (STORE + "/keys?signature={sig_keys_scratch}", 404, HIDDEN),
    "keys-record-sig": (STORE + "/keys?signature={sig_k1}", 404, HIDDEN),
    "keys-bad-base64": (STORE + "/keys?signature=%%%%", 404, HIDDEN),
    "keys-version-1": (STORE + "/keys?signature={sig_keys_v1}", 404, HIDDEN),
    "keys-negative-expiry": (STORE + "/keys?signature={sig_keys_negative}", 404, HIDDEN),
    "keys-huge-expiry-genuine": (STORE + "/keys?signature={sig_keys_huge}", 200, None),
    "keys-too-many-digits": (STORE + "/keys?signature={sig_keys_digits}", 404, HIDDEN),
    "keys-non-ascii-mac": (STORE + "/keys?signature={sig_keys_non_ascii}", 404, HIDDEN),
    "record-non-ascii": (REC + "k1?signature=%C3%A9t%C3%A9", 404, HIDDEN),
    "keys-not-utf8": (STORE + "/keys?signature=__8=", 404, HIDDEN),
    "keys-four-parts": (STORE + "/keys?signature={sig_keys_parts}", 404, HIDDEN),
    "record-expiring": (REC + "k1?signature={sig_k1_expiring}", 200, None),
    "record-expiring-expired": (REC + "k1?signature={sig_k1_expiring_expired}", 403, "invalid-signature"),
    "record-expiring-other-key": (REC + "k1?signature={sig_gz_expiring}", 404, HIDDEN),
    "record-expiring-as-keys": (STORE + "/keys?signature={sig_k1_expiring}", 404, HIDDEN),
    "zip-valid": (STORE + "/records?signature={sig_keys}", 200, None),
    "zip-expired": (STORE + "/records?signature={sig_keys_expired}", 403, "invalid-signature"),
    "store-object-no-grant": (STORE + "?signature={sig_keys}", 404, "record-or-token-not-found"),
    "by-name-signed": (f"/key-value-stores/admin~{SEED_NAME}/keys?signature={{sig_keys}}", 200, None),
}.items():
    case("signatures", name, "GET", target, status, etype, token=None)
case(
    "signatures",
    "put-with-signature",
    "PUT",
    REC + "k1?signature={sig_k1}",
    401,
    "token-not-provided",
    token=None,
    body=b"changed",
)
case(
    "signatures",
    "delete-with-signature",
    "DELETE",
    REC + "k1?signature={sig_k1}",
    401,
    "token-not-provided",
    token=None,
)
case(
    "signatures",
    "override-put-signed",
    "GET",
    REC + "k1?signature={sig_k1}&method=PUT",
    401,
    "token-not-provided",
    token=None,
)
case(
    "signatures",
    "other-user-forged",
    "GET",
    REC + "k1?signature=forged",
    404,
    "record-not-found",
    token="bob",
)

# 13. ?method= abuse.
for name, (target, method_param, status, etype) in {
    "unknown": (REC + "k1", "FOO", 400, "invalid-request"),
    "trace": (REC + "k1", "TRACE", 400, "invalid-request"),
    "connect": (REC + "k1", "CONNECT", 400, "invalid-request"),
    "nul": (REC + "k1", "%00", 400, "invalid-request"),
    "long": (REC + "k1", "G" * 5000, 400, "invalid-request"),
    "spaces": (REC + "k1", "%20GET", 400, "invalid-request"),
    "lower-get": (REC + "k1", "get", 200, None),
    "empty": (REC + "k1", "", 200, None),
    "delete-on-keys": (STORE + "/keys", "DELETE", 405, "method-not-allowed"),
    "put-on-keys": (STORE + "/keys", "PUT", 405, "method-not-allowed"),
    "delete-on-zip": (STORE + "/records", "DELETE", 405, "method-not-allowed"),
    "post-on-zip": (STORE + "/records", "POST", 405, "method-not-allowed"),
    "put-on-me": ("/users/me", "PUT", 405, "method-not-allowed"),
    "delete-on-me": ("/users/me", "DELETE", 405, "method-not-allowed"),
    "delete-on-user": ("/users/admin", "DELETE", 405, "method-not-allowed"),
    "patch-on-record": (REC + "k1", "PATCH", 405, "method-not-allowed"),
    "patch-on-store": (STORE, "PATCH", 405, "method-not-allowed"),
    "delete-on-collection": ("/key-value-stores", "DELETE", 405, "method-not-allowed"),
    "put-on-collection": ("/key-value-stores", "PUT", 405, "method-not-allowed"),
    "get-on-share": (STORE + "/shares/bob", "GET", 405, "method-not-allowed"),
    "post-on-shares": (STORE + "/shares", "POST", 405, "method-not-allowed"),
    "head-on-keys": (STORE + "/keys", "HEAD", 200, None),
    "head-on-missing": (REC + "nope", "HEAD", 404, None),
    "options": (REC + "k1", "OPTIONS", 204, None),
    "delete-on-unknown-route": ("/nothing-here", "DELETE", 404, "page-not-found"),
    "twice": (REC + "k1", "DELETE&method=FOO", 400, "invalid-request"),
}.items():
    case("method-override", name, "GET", f"{target}?method={method_param}", status, etype)
case(
    "method-override",
    "put-via-get-anonymous",
    "GET",
    REC + "k1?method=PUT",
    401,
    "token-not-provided",
    token=None,
)
case(
    "method-override",
    "delete-via-get-bob",
    "GET",
    STORE + "?method=DELETE",
    404,
    "record-not-found",
    token="bob",
)
case("method-override", "post-overridden-to-get", "POST", REC + "k1?method=GET", 200, body=b"ignored")
for method in ("PATCH", "TRACE", "FOO", "PROPFIND", "M-SEARCH"):
    case("method-override", f"real-{method}-record", method, REC + "k1", 405, "method-not-allowed")
case("method-override", "real-post-on-keys", "POST", STORE + "/keys", 405, "method-not-allowed")
case("method-override", "real-delete-on-zip", "DELETE", STORE + "/records", 405, "method-not-allowed")

# 14. Unknown routes.
for name, target in {
    "favicon": "//favicon.ico",
    "v1": "//v1/key-value-stores",
    "v2-bare": "//v2",
    "v2-slash": "//v2/",
    "v3": "//v3/key-value-stores",
    "datasets-unknown-child": "/datasets/abc/unknown",
    "request-queues-unknown-child": "/request-queues/abc/head/unknown",
    "actor-runs-unknown-child": "/actor-runs/abc/unknown",
    "upper-v2": "//V2/users/me",
    "upper-collection": "/KEY-VALUE-STORES",
    "store-unknown-child": STORE + "/unknown",
    "store-keys-extra": STORE + "/keys/extra",
    "record-extra": REC + "k1/extra",
    "record-two-extra": REC + "k1/a/b",
    "users-bare": "/users",
    "users-me-extra": "/users/me/extra",
    "shares-extra": STORE + "/shares/bob/extra",
    "two-trailing-slashes": STORE + "/keys//",
    "dot-v2": "//./v2/users/me",
}.items():
    case("routes", name, "GET", target, 404, "page-not-found")
    case("routes", f"{name}-delete", "DELETE", target, 404, "page-not-found")
case("routes", "semicolon-in-store", "GET", STORE + ";x=1/keys", 404, "record-not-found")
case("routes", "semicolon-in-store-delete", "DELETE", STORE + ";x=1/keys", 405, "method-not-allowed")
case("routes", "openapi-anonymous", "GET", "/openapi.json", 200, token=None)
case("routes", "openapi-forged-token", "GET", "/openapi.json", 401, "invalid-token", token="forged")
case("routes", "openapi-put", "PUT", "/openapi.json", 405, "method-not-allowed", body=b"{}")
case("routes", "openapi-extra", "GET", "/openapi.json/x", 404, "page-not-found")
case("routes", "openapi-dotdot", "GET", "/openapi.json/..", 404, "page-not-found")
case("routes", "trailing-slash-keys", "GET", STORE + "/keys/", 200)
case("routes", "user-unknown", "GET", "/users/nobody-here", 404, "user-not-found")
case("routes", "user-long", "GET", "/users/" + "u" * 5000, 404, "user-not-found")

# 15. HEAD on everything: the GET's status and headers, never a body.
for name, (target, status, token) in {
    "collection": ("/key-value-stores", 200, "admin"),
    "store": (STORE, 200, "admin"),
    "keys": (STORE + "/keys", 200, "admin"),
    "zip": (STORE + "/records", 200, "admin"),
    "record": (REC + "k1", 200, "admin"),
    "record-gz": (REC + "gz", 200, "admin"),
    "record-missing": (REC + "nope", 404, "admin"),
    "record-bad-key": (REC + "a%2Fb", 400, "admin"),
    "record-bad-utf8": (REC + "%FF", 400, "admin"),
    "record-anonymous": (REC + "k1", 404, None),
    "record-forged": (REC + "k1", 401, "forged"),
    "record-signed": (REC + "k1?signature={sig_k1}", 200, None),
    "record-bad-signature": (REC + "k1?signature=x", 404, None),
    "shares": (STORE + "/shares", 200, "admin"),
    "share": (STORE + "/shares/bob", 405, "admin"),
    "me": ("/users/me", 200, "admin"),
    "me-anonymous": ("/users/me", 401, None),
    "user": ("/users/admin", 200, None),
    "user-missing": ("/users/nobody-here", 404, None),
    "unknown": ("/nothing", 404, None),
    "root": ("//", 303, None),  # the Console's front door
    "store-missing": ("/key-value-stores/nope", 404, "admin"),
    "keys-bad-limit": (STORE + "/keys?limit=-1", 400, "admin"),
    "record-method-foo": (REC + "k1?method=FOO", 400, "admin"),
    "openapi": ("/openapi.json", 200, None),
}.items():
    case("head", name, "HEAD", target, status, token=token)


# Regressions and late additions, each in its category.
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
case(
    "json", "rename-onto-taken-name", "PUT", SCRATCH, 409, "name-not-unique", body=b'{"name": "hostile-seed"}'
)
for name, target in {
    "override-get-me": "/users/me?method=GET",
    "override-get-keys": STORE + "/keys?method=GET",
    "override-get-record": REC + "gz?method=GET",
    "override-get-zip": STORE + "/records?method=GET",
    "override-foo": REC + "k1?method=FOO",
}.items():
    case("head", name, "HEAD", target, 400 if "foo" in name else 200)


# The root and /console belong to the web Console (HTML, not the API): no envelope there, but never a 5xx.
for name, (method, target, status) in {
    "root": ("GET", "//", 303),
    "root-query": ("GET", "//?x=1", 303),
    "root-put": ("PUT", "//", 405),
    "root-delete": ("DELETE", "//", 405),
    "console-ff": ("GET", "//console/%FF", 404),
    "console-dotdot-to-api": ("GET", "//console/../v2/users/me", 404),
    "console-store-nul": ("GET", "//console/stores/%00", 404),
    "console-asset-traversal": ("GET", "//console/assets/..%2F..%2Fapp.py", 404),
    "console-asset-ff": ("GET", "//console/assets/%FF", 404),
    "console-login-empty-post": ("POST", "//console/login", 401),
    "console-login-open-redirect": ("GET", "//console/login?next=//evil.example", 200),
    "console-login-next-ff": ("GET", "//console/login?next=%FF", 200),
    "console-record-dotdot": ("GET", "//console/stores/x/records/%2E%2E", 404),
    "console-long": ("GET", "//console/" + "a" * 10000, 404),
}.items():
    case("routes", name, method, target, status, envelope=False, token=None)


# --- the server and its seeds


def cli(data_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "satchel", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Hostile:
    server: Server
    port: int
    values: dict[str, str]
    tokens: dict[str, str]
    seed_digest: str = ""
    seen: Counter[str] = field(default_factory=Counter)


SEED_RECORDS: dict[str, tuple[str, str | None, bytes]] = {
    "k1": ("text/plain", None, b"hello"),
    "json": ("application/json", None, b'{"a": [1, 2, 3]}'),
    "gz": ("text/plain", "gzip", gzip.compress(TEXT)),
    "br": ("application/json", "br", brotli.compress(b'{"b": true}')),
    "blob": ("application/octet-stream", None, os.urandom(300 * 1024)),
    "...": ("text/plain", None, b"dots"),
}


def seed_digest(http: httpx.Client, sid: str) -> str:
    """One digest over the seeded records' stored bytes, types and encodings, the key list and the store."""
    digest = hashlib.sha256()
    keys = http.get(f"/key-value-stores/{sid}/keys").json()["data"]["items"]
    digest.update(orjson.dumps(sorted((k["key"], k["size"]) for k in keys)))
    store = http.get(f"/key-value-stores/{sid}").json()["data"]
    digest.update(orjson.dumps([store["name"], store["generalAccess"], store["title"]]))
    for key in SEED_RECORDS:
        response = http.get(f"/key-value-stores/{sid}/records/{quote(key, safe='')}",
                            headers={"accept-encoding": "gzip, br, deflate"})  # fmt: skip
        assert response.status_code == 200, response.text
        digest.update(key.encode())
        digest.update(response.headers["content-type"].encode())
        digest.update(response.headers.get("content-encoding", "").encode())
        digest.update(hashlib.sha256(response.read()).digest())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("hostile") / "data",
        env={"SATCHEL_MAX_RECORD_BYTES": str(MAX_RECORD), "SATCHEL_MAX_DECODED_BYTES": str(MAX_DECODED)},
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def hostile(hostile_server: Server) -> Hostile:
    server = hostile_server
    data_dir = server.data_dir
    bob = cli(data_dir, "users", "create", "bob").split("API token: ")[1].strip()
    revoked = cli(data_dir, "tokens", "create", "admin").strip().split()[-1]
    cli(data_dir, "tokens", "revoke", revoked)
    tokens = {"admin": server.token, "bob": bob, "revoked": revoked, "forged": FORGED_TOKEN}
    # httpx decodes nothing here: the digest is over the bytes as stored.
    with server.client() as http:
        http.headers["accept-encoding"] = "identity"
        seed = http.post("/key-value-stores", params={"name": SEED_NAME}).json()["data"]
        scratch = http.post("/key-value-stores", params={"name": "hostile-scratch"}).json()["data"]
        http.post("/key-value-stores", params={"name": "hostile-odd"}, json={"schema": {"collections": [1]}})
        for key, (ctype, encoding, body) in SEED_RECORDS.items():
            headers = {"content-type": ctype, **({"content-encoding": encoding} if encoding else {})}
            response = http.put(f"/key-value-stores/{seed['id']}/records/{quote(key, safe='')}",
                                content=body, headers=headers)  # fmt: skip
            assert response.status_code == 201, response.text
        secret, sid = seed["urlSigningSecretKey"], seed["id"]
        sid2, secret2 = scratch["id"], scratch["urlSigningSecretKey"]
        now_ms = int(time.time() * 1000)

        def forged_storage(version: str, expires: str) -> str:
            mac = hmac_signature(secret, f"{version}.{expires}.{sid}")
            return base64.urlsafe_b64encode(f"{version}.{expires}.{mac}".encode()).decode()

        values = {
            "sid": sid,
            "scratch": sid2,
            "admin_token": server.token,
            "revoked_token": revoked,
            "sig_k1": record_signature(secret, "k1"),
            "sig_gz": record_signature(secret, "gz"),
            "sig_k1_scratch": record_signature(secret2, "k1"),
            "sig_keys": storage_signature(secret, sid),
            "sig_k1_expiring": quote(expiring_record_signature(secret, "k1", now_ms + 3_600_000), safe=""),
            "sig_k1_expiring_expired": quote(expiring_record_signature(secret, "k1", now_ms - 1000), safe=""),
            "sig_gz_expiring": quote(expiring_record_signature(secret, "gz", now_ms + 3_600_000), safe=""),
            "sig_keys_unpadded": storage_signature(secret, sid).rstrip("="),
            "sig_keys_future": storage_signature(secret, sid, now_ms + 3_600_000),
            "sig_keys_expired": storage_signature(secret, sid, now_ms - 1000),
            "sig_keys_scratch": storage_signature(secret2, sid2),
            "sig_keys_v1": forged_storage("1", "0"),
            "sig_keys_negative": forged_storage("0", "-5"),
            "sig_keys_huge": forged_storage("0", "9" * 400),
            "sig_keys_parts": forged_storage("0", "0.0"),
            "sig_keys_digits": forged_storage("0", "9" * 5000),
            "sig_keys_non_ascii": base64.urlsafe_b64encode("0.0.été".encode()).decode(),
        }
        return Hostile(server, int(server.base_url.rsplit(":", 1)[1]), values, tokens, seed_digest(http, sid))


def fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def request_bytes(c: Case, state: Hostile) -> bytes:
    values = {**state.values, "token": state.tokens["admin"]}
    if c.raw is not None:
        return fill(c.raw.decode("latin-1"), values).encode("latin-1")
    target = c.target[1:] if c.target.startswith("//") else "/v2" + c.target
    headers = [(name, fill(value, values)) for name, value in c.headers]
    if c.token is not None:
        headers.append(("Authorization", f"Bearer {state.tokens[c.token]}"))
    return build(c.method, fill(target, values), headers, c.body)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_case(hostile: Hostile, c: Case) -> None:
    reply = exchange(
        hostile.port, request_bytes(c, hostile), head=c.method == "HEAD", half_close=c.half_close
    )
    hostile.seen[c.category] += 1
    assert reply.status < 500, (reply.status, reply.body[:500])
    assert reply.status == c.status, (reply.status, reply.body[:500])
    if c.method == "HEAD":
        assert reply.body == b""
        return
    if c.status >= 400 and c.envelope:
        error = reply.error()
        if c.type is not None:
            assert error["type"] == c.type, error
        assert reply.headers.get("content-type", "").startswith("application/json")


def test_whole_table_concurrently(hostile: Hostile) -> None:
    """The table again, eight requests at a time: orders differ, so only the rules hold, never a 5xx and
    always the envelope on an error the app answers."""

    def run(c: Case) -> tuple[Case, Reply]:
        return c, exchange(
            hostile.port, request_bytes(c, hostile), head=c.method == "HEAD", half_close=c.half_close
        )

    with ThreadPoolExecutor(8) as pool:
        for c, reply in pool.map(run, CASES):
            assert 200 <= reply.status < 500, (c.id, reply.status, reply.body[:300])
            if reply.status >= 400 and c.envelope and c.method != "HEAD":
                reply.error()


def test_seed_unchanged_and_server_healthy(hostile: Hostile) -> None:
    with hostile.server.client() as http:
        http.headers["accept-encoding"] = "identity"
        assert seed_digest(http, hostile.values["sid"]) == hostile.seed_digest
        sid = hostile.values["sid"]
        response = http.put(f"/key-value-stores/{sid}/records/after", content=b"fine",
                            headers={"content-type": "text/plain"})  # fmt: skip
        assert response.status_code == 201
        assert http.get(f"/key-value-stores/{sid}/records/after").content == b"fine"
        assert http.delete(f"/key-value-stores/{sid}/records/after").status_code == 204


def test_content_length_shorter_than_body_stores_only_what_was_declared(hostile: Hostile) -> None:
    scratch = hostile.values["scratch"]
    request = (
        f"PUT /v2/key-value-stores/{scratch}/records/short HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {hostile.tokens['admin']}\r\nContent-Length: 3\r\n\r\nabcdefgh"
    ).encode()
    assert exchange(hostile.port, request).status == 201
    with hostile.server.client() as http:
        assert http.get(f"/key-value-stores/{scratch}/records/short").content == b"abc"


def test_abandoned_upload_leaves_no_temporary_file(hostile: Hostile) -> None:
    """A client that hangs up half-way through a large body: nothing stored, nothing left behind."""
    scratch = hostile.values["scratch"]
    tmp_root = hostile.server.data_dir / "blobs" / "tmp"
    head = (
        f"PUT /v2/key-value-stores/{scratch}/records/abandoned HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {hostile.tokens['admin']}\r\nContent-Length: {MAX_RECORD}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", hostile.port), timeout=REPLY_TIMEOUT) as sock:
        sock.sendall(head + b"x" * (MAX_RECORD // 2))
        time.sleep(0.5)  # past the inline size: the body is spooling to a temporary file by now
        assert any(p.is_file() for p in tmp_root.rglob("*"))
    deadline = time.monotonic() + 10
    while any(p.is_file() for p in tmp_root.rglob("*")):
        assert time.monotonic() < deadline, list(tmp_root.rglob("*"))
        time.sleep(0.1)
    with hostile.server.client() as http:
        assert http.get(f"/key-value-stores/{scratch}/records/abandoned").status_code == 404


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


def test_summary(hostile: Hostile) -> None:
    counts = Counter(c.category for c in CASES)
    width = max(map(len, counts))
    print("\nhostile cases per category:")
    for category, count in counts.items():
        print(f"  {category:<{width}}  {count}")
    print(f"  {'total':<{width}}  {sum(counts.values())}")
    assert sum(counts.values()) >= 300


# --- around the table: the log, slow clients, bombs read back


def test_no_unexpected_errors_logged(hostile: Hostile) -> None:
    log = hostile.server.data_dir.parent / f"server-{hostile.port}.log"
    text = log.read_text(errors="replace")
    assert "unexpected error" not in text, text[-5000:]
    assert "Traceback" not in text, text[-5000:]


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


def group_rss(pgid: int) -> int:
    """Resident memory of every process in the server's process group (granian runs workers as children)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


class PeakRss:
    """Samples the server's memory in the background while a block runs."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.base = group_rss(pgid)
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, group_rss(self.pgid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.base


MIB = 1024 * 1024
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
    with bomb_server.client() as http, PeakRss(bomb_server.process.pid) as rss:
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
        with PeakRss(bomb_server.process.pid) as rss:
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
