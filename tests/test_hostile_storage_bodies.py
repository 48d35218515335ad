"""Hostile bodies on the dataset, request-queue and run endpoints: bodies that are not JSON or not the JSON an
endpoint takes, wrong types in every field, Content-Encoding that lies, bombs, bodies past the limits and
Content-Length that lies.

Each request goes over a raw socket to a real `satchel serve`, byte for byte as written, and gets the status
and error type it must (tests/harness/hostile.py holds the client and the rule); the seeded dataset, queue and
runs are in tests/harness/hostile_storages.py. test_hostile_storage_routes.py checks that every dataset,
queue and run route is sent something.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import zlib
from pathlib import Path
from typing import Any

import brotli
import orjson
import pytest

from satchel.service.queue_requests import request_id
from tests.harness.hostile import (
    MIB,
    Case,
    Engine,
    Hostile,
    PeakRss,
    Table,
    assert_log_clean,
    check_case,
    check_concurrently,
    enc,
    group_rss,
    send,
)
from tests.harness.hostile_storages import (
    ADD,
    IR,
    IV,
    LOCK,
    MAX_DECODED,
    NF,
    PAYLOAD_LIMIT,
    PUT_RID,
    RID_URL,
    RUN,
    SDS,
    SQ,
    array,
    assert_seeds_unchanged_and_server_healthy,
    json_body,
    storages_hostile,
)

TABLE = Table()
case = TABLE.case


def table(category: str, rows: list[tuple[Any, ...]]) -> None:
    """Rows of (name, method, target, status, error type[, body])."""
    for name, method, target, status, etype, *body in rows:
        case(category, name, method, target, status, etype, body=body[0] if body else b"")


# --- Bodies that are not JSON, or not the JSON an endpoint takes.
JSON_ROUTES = {
    "dataset-create": ("POST", "/datasets"),
    "dataset-update": ("PUT", SDS),
    "items-push": ("POST", SDS + "/items"),
    "queue-create": ("POST", "/request-queues"),
    "queue-update": ("PUT", SQ),
    "request-add": ("POST", ADD),
    "batch-add": ("POST", ADD + "/batch"),
    "batch-delete": ("DELETE", ADD + "/batch"),
    "request-put": ("PUT", PUT_RID),
    "unlock": ("POST", ADD + "/unlock?clientKey=nobody"),
    "head-lock": ("POST", SQ + "/head/lock?lockSecs=0.001"),
    "lock-prolong": ("PUT", LOCK + "?lockSecs=3600&clientKey=holder"),
    "lock-delete": ("DELETE", LOCK + "?clientKey=holder"),  # never sent a body it takes: it would release
    "dataset-share": ("PUT", SDS + "/shares/bob"),
    "queue-share": ("PUT", SQ + "/shares/bob"),
    "run-update": ("PUT", RUN),
    "run-charge": ("POST", RUN + "/charge"),
    "run-items-push": ("POST", RUN + "/dataset/items"),
    "last-run-request-add": ("POST", "/acts/~hs-actor/runs/last/request-queue/requests"),
    "last-run-update": ("PUT", "/acts/~hs-actor/runs/last"),
    "last-run-charge": ("POST", "/acts/~hs-actor/runs/last/charge"),
}
NOT_JSON = {
    "open-brace": b"{",
    "trailing-comma": b'{"a": 1,}',
    "single-quotes": b"{'a': 1}",
    "nan": b'{"a": NaN}',
    "infinity": b'{"a": -Infinity}',
    "number-past-double": b'{"a": 1e400}',
    "bom": b'\xef\xbb\xbf{"a": 1}',
    "invalid-utf8": b'{"a": "\xff"}',
    "lone-high-surrogate": b'{"a": "\\ud800"}',
    "lone-low-surrogate": b'{"a": "\\udc00x"}',
    "two-values": b"{} {}",
    "bare-word": b"hello",
    "deep-100k": b"[" * 100_000 + b"]" * 100_000,
    "nul-after": b'{"a": 1}\x00',
}
for route, (method, target) in JSON_ROUTES.items():
    for name, body in NOT_JSON.items():
        case("json", f"{route}-{name}", method, target, 400, IR, body=body)
    # A bare value is no endpoint's shape (a huge integer parses, as a double).
    for name, body in {"string": b'"x"', "number": b"1", "true": b"true", "huge-int": b"1" * 400}.items():
        case("json", f"{route}-{name}", method, target, 400, body=body)
    if route not in ("items-push", "run-items-push", "batch-add", "batch-delete", "lock-delete"):
        case("json", f"{route}-array", method, target, 400, IR, body=b"[]")
        case("json", f"{route}-100k-array", method, target, 400, body=array(100_000))
# Valid but odd: duplicate keys (the last wins), integers past 64 bits (kept as doubles), 100k tiny items.
table("json", [
    ("items-duplicate-keys", "POST", SDS + "/items", 201, None, b'{"a": 1, "a": 2}'),
    ("items-huge-int", "POST", SDS + "/items", 201, None, b'{"a": 123456789012345678901234567890}'),
    ("items-100k-tiny", "POST", "/datasets/{big}/items", 201, None, array(100_000)),
    ("items-empty-array", "POST", SDS + "/items", 201, None, b"[]"),
    ("items-deep-200", "POST", SDS + "/items", 201, None, b'{"a": ' + b"[" * 200 + b"]" * 200 + b"}"),
    ("items-empty-body", "POST", SDS + "/items", 400, IR, b""),
    ("items-null", "POST", SDS + "/items", 400, IR, b"null"),
    ("items-numbers", "POST", SDS + "/items", 400, IR, b"[1, 2]"),
    ("items-with-null", "POST", SDS + "/items", 400, IR, b"[{}, null]"),
    ("items-of-arrays", "POST", SDS + "/items", 400, IR, b"[[]]"),
    ("items-of-strings", "POST", SDS + "/items", 400, IR, b'["x"]'),
    # Parsed, but nested past what the JSON encoder writes (255 levels): once a 500.
    *[(f"items-deep-{n}", "POST", SDS + "/items", 400, IV, b'[{"a": ' + b"[" * n + b"]" * n + b"}]")
      for n in (260, 300, 1000)],
    ("request-duplicate-keys", "POST", ADD, 201, None,
     b'{"url": "http://hostile.example/d", "uniqueKey": "a", "uniqueKey": "dup"}'),
    ("request-userdata-100k", "POST", ADD, 201, None,
     b'{"url": "http://hostile.example/big", "userData": {"a": ' + array(100_000, b"0") + b"}}"),
    ("batch-100k-tiny", "POST", ADD + "/batch", 400, IR, array(100_000)),
    ("batch-delete-100k-tiny", "DELETE", ADD + "/batch", 400, IR, array(100_000)),
    ("dataset-create-null", "POST", "/datasets", 201, None, b"null"),
    ("dataset-create-empty", "POST", "/datasets", 201, None, b""),
    ("dataset-create-unknown-field", "POST", "/datasets", 201, None, b'{"x": 1}'),
])  # fmt: skip

# --- Wrong types in every field the handlers read.
BAD_FIELDS: dict[str, list[tuple[str, Any, int, str | None]]] = {
    "uniqueKey": [("number", 5, 400, IR), ("list", [], 400, IR), ("object", {}, 400, IR),
                  ("empty", "", 400, IR), ("bool", True, 400, IR), ("null", None, 201, None)],
    "url": [("number", 5, 400, IR), ("empty", "", 400, IR), ("list", [], 400, IR), ("object", {}, 400, IR),
            ("null", None, 400, IR), ("no-scheme", "example.com/a", 400, IV), ("relative", "/a", 400, IV),
            ("words", "not a url", 400, IV), ("scheme-only", "https:", 400, IV),
            ("newline", "https://example.com/a\nb", 400, IV), ("nul", "https://example.com/\u0000", 400, IV),
            ("digit-scheme", "1http://a", 400, IV), ("ftp", "ftp://example.com/f", 201, None),
            ("space", "https://example.com/a b", 201, None), ("unicode", "https://例え.jp/パス", 201, None)],
    "method": [("number", 5, 400, IV), ("list", [], 400, IV), ("bool", True, 400, IV),
               ("odd", "BREW", 201, None)],
    "userData": [("string", "x", 400, IV), ("list", [], 400, IV), ("number", 5, 400, IV),
                 ("object", {}, 201, None), ("deep-100", {"a": json.loads("[" * 100 + "]" * 100)}, 400, IV)],
    # Year 1 at +14:00 is year 0 in UTC, 9999 at -14:00 is 10000: either once failed every read of it.
    "handledAt": [("number", 5, 400, IV), ("word", "yesterday", 400, IV), ("empty", "", 400, IV),
                  ("list", [], 400, IV), ("feb-30", "2024-02-30T00:00:00Z", 400, IV),
                  ("year-0", "0001-01-01T00:00:00+14:00", 400, IV),
                  ("year-10000", "9999-12-31T23:59:59-14:00", 400, IV),
                  ("before-1970", "1969-12-31T23:59:59Z", 400, IV),
                  ("naive", "2024-01-01T00:00:00", 201, None),
                  ("offset", "2024-01-01T00:00:00+05:00", 201, None)],
    "retryCount": [("string", "1", 400, IV), ("float", 1.5, 400, IV), ("negative", -1, 400, IV),
                   ("bool", True, 400, IV), ("huge", 2**70, 400, IV), ("zero", 0, 201, None)],
    "id": [("other", "aaaaaaaaaaaaaaa", 400, IR), ("number", 5, 400, IR)],
    "noRetry": [("string", "yes", 400, IV)],
    "headers": [("list", [], 400, IV)],
    "payload": [("number", 5, 400, IV)],
    "errorMessages": [("string", "x", 400, IV)],
    "loadedUrl": [("number", 5, 400, IV)],
}  # fmt: skip
for field, values in BAD_FIELDS.items():
    for label, value, status, etype in values:
        name = f"{field}-{label}"
        sent = {field: value} if field == "url" else {"url": f"http://hostile.example/{name}", field: value}
        batch = b'[{"url": "http://hostile.example/ok"}, ' + json_body(sent) + b"]"
        case("fields", f"add-{name}", "POST", ADD, status, etype, body=json_body(sent))
        case("fields", f"batch-{name}", "POST", ADD + "/batch", status, etype, body=batch)
        if field not in ("url", "uniqueKey", "id"):  # a PUT's body must name the request of its path
            put = json_body({"url": RID_URL, field: value})
            case("fields", f"put-{name}", "PUT", PUT_RID, 200 if status == 201 else status, etype, body=put)
ups = "http://hostile.example/up"
twenty_six = orjson.dumps([{"url": f"http://hostile.example/b{i}"} for i in range(26)])
table("fields", [
    *[(f"batch-delete-{name}", "DELETE", ADD + "/batch", 400, IR, body) for name, body in {
        "not-object": b"[5]", "id-number": b'[{"id": 5}]', "key-number": b'[{"uniqueKey": 5}]',
        "id-key-mismatch": b'[{"id": "aaaaaaaaaaaaaaa", "uniqueKey": "x"}]', "nothing": b"[{}]",
        "null": b"null", "object": b"{}"}.items()],
    # A request id that is not its uniqueKey's; 26 requests in a batch.
    ("put-id-mismatch", "PUT", SQ + "/requests/aaaaaaaaaaaaaaa", 400, IR, orjson.dumps({"url": RID_URL})),
    ("put-body-id-mismatch", "PUT", PUT_RID, 400, IR, json_body({"url": RID_URL, "id": request_id("x")})),
    ("put-other-key", "PUT", PUT_RID, 400, IR, b'{"url": "http://hostile.example/2"}'),
    ("put-unknown-id-upserts", "PUT", f"{ADD}/{request_id(ups)}", 200, None, json_body({"url": ups})),
    ("batch-26", "POST", ADD + "/batch", 400, IR, twenty_six),
    ("batch-delete-26", "DELETE", ADD + "/batch", 400, IR, twenty_six),
    ("batch-25", "POST", ADD + "/batch", 201, None, orjson.dumps(orjson.loads(twenty_six)[:25])),
])  # fmt: skip
# Names, titles, access and schemas of datasets and queues.
for kind, target, seed in (("datasets", SDS, "hs-seed"), ("request-queues", SQ, "hs-seed-q")):
    for name, value in {
        "underscore": "a_b",
        "long": "a" * 64,
        "nul": "a\x00",
        "tilde": "a~b",
        "unicode": "日本",
    }.items():
        case("fields", f"{kind}-create-name-{name}", "POST", f"/{kind}?name={enc(value)}", 400, IV)
    updates = [
        ("name-number", b'{"name": 5}', 400, IV), ("name-list", b'{"name": []}', 400, IV),
        ("name-bad", b'{"name": "a_b"}', 400, IV), ("title-number", b'{"title": 5}', 400, IV),
        ("title-long", orjson.dumps({"title": "t" * 300}), 400, IV),
        ("title-control", b'{"title": "a\\u0001"}', 400, IV),
        ("access-bad", b'{"generalAccess": "EVERYONE"}', 400, IV),
        ("access-list", b'{"generalAccess": ["RESTRICTED"]}', 400, IV),
        ("name-taken", orjson.dumps({"name": seed}), 409, "name-not-unique"),
        ("unknown-fields", b'{"foo": [1, {"bar": null}]}', 200, None),
    ]  # fmt: skip
    table("fields", [(f"{kind}-update-{label}", "PUT", target, status, etype, body)
                     for label, body, status, etype in updates])  # fmt: skip
# A name that is no string once made an unnamed storage; a queue takes no schema.
NOT_NAMES = {"name-number": b'{"name": 5}', "name-list": b'{"name": []}', "name-object": b'{"name": {}}',
             "name-zero": b'{"name": 0}', "name-false": b'{"name": false}'}  # fmt: skip
BAD_SCHEMAS = {"schema-list": b'{"schema": []}', "schema-string": b'{"schema": "x"}',
               "schema-deep": b'{"schema": {"a": ' + b"[" * 100 + b"]" * 100 + b"}}"}  # fmt: skip
# A dataset's `fields` is checked as the JSON Schema its items are checked against.
BAD_ITEM_SCHEMAS = {f"fields-{label}": orjson.dumps({"schema": {"fields": fields}}) for label, fields in {
    "list": ["a"], "string": "object", "type": {"type": "strng"}, "required": {"required": "a"},
    "regex": {"properties": {"a": {"pattern": "("}}}, "repeat": {"pattern": "a{1,99999999999}"},
    "pattern-key": {"patternProperties": {"[": {}}}, "remote-ref": {"$ref": "http://127.0.0.1:1/s.json"},
    "file-ref": {"$ref": "file:///etc/passwd"}, "dangling-ref": {"$ref": "#/definitions/none"},
    "draft": {"$schema": "https://json-schema.org/draft/2020-12/schema"},
    "ref-loop": {"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}},
                 "$ref": "#/definitions/a"},
    "anchor": {"$ref": "#nowhere"},
}.items()}  # fmt: skip
for kind, bad in (("datasets", NOT_NAMES | BAD_SCHEMAS | BAD_ITEM_SCHEMAS),
                  ("key-value-stores", NOT_NAMES | BAD_SCHEMAS),
                  ("request-queues", NOT_NAMES)):  # fmt: skip
    table(
        "fields",
        [(f"{kind}-create-{label}", "POST", f"/{kind}", 400, IV, body) for label, body in bad.items()],
    )
# Runs: the fields of a PUT (status above all), a charge, a start.
table("runs", [(f"update-{label}", "PUT", RUN, 400, IV, body) for label, body in {
    "status-unknown": b'{"status": "DONE"}', "status-lower": b'{"status": "succeeded"}',
    "status-number": b'{"status": 5}', "status-list": b'{"status": ["SUCCEEDED"]}',
    "status-object": b'{"status": {}}', "status-empty": b'{"status": ""}',
    "status-spaced": b'{"status": " SUCCEEDED"}', "status-bool": b'{"status": true}',
    "exit-string": b'{"exitCode": "1"}', "exit-float": b'{"exitCode": 1.5}',
    "exit-bool": b'{"exitCode": true}',
    "exit-huge": b'{"exitCode": 1e300}', "exit-big": b'{"exitCode": 4294967296}',
    "message-number": b'{"statusMessage": 5}', "message-long": orjson.dumps({"statusMessage": "m" * 3000}),
    "terminal-string": b'{"isStatusMessageTerminal": "yes"}', "access-bad": b'{"generalAccess": "X"}',
    "access-list": b'{"generalAccess": []}', "finished-word": b'{"finishedAt": "yesterday"}',
    "finished-number": b'{"finishedAt": 5}', "finished-feb-30": b'{"finishedAt": "2024-02-30T00:00:00Z"}',
    # NUL, which PostgreSQL's text cannot hold; an exit code past a 32-bit integer.
    "message-nul": b'{"statusMessage": "a\\u0000b"}', "exit-int32": b'{"exitCode": 2147483648}',
    "exit-int32-low": b'{"exitCode": -2147483649}',
}.items()])  # fmt: skip
table("runs", [(f"update-{label}", "PUT", RUN, 200, None, body) for label, body in {
    "status-null": b'{"status": null}', "run-id-other": b'{"runId": "other"}', "empty": b"{}", "no-body": b"",
}.items()])  # fmt: skip
table("runs", [(f"charge-{label}", "POST", RUN + "/charge", 400, IV, body) for label, body in {
    "event-number": b'{"eventName": 5}', "event-long": orjson.dumps({"eventName": "e" * 300}),
    "count-zero": b'{"eventName": "e", "count": 0}', "count-negative": b'{"eventName": "e", "count": -1}',
    "count-string": b'{"eventName": "e", "count": "1"}', "count-float": b'{"eventName": "e", "count": 1.5}',
    "count-bool": b'{"eventName": "e", "count": true}', "count-huge": b'{"eventName": "e", "count": 1e20}',
    "event-nul": b'{"eventName": "e\\u0000"}',
    "no-event": b""}.items()])  # fmt: skip
case("runs", "charge-key-long", "POST", RUN + "/charge", 400, IV, body=b'{"eventName": "e"}',
     headers=(("idempotency-key", "k" * 300),))  # fmt: skip
case(
    "runs",
    "charge-ok",
    "POST",
    RUN + "/charge",
    201,
    body=b'{"eventName": "e"}',
    headers=(("idempotency-key", "k"),),
)
for label, query in {"memory-word": "memory=abc", "memory-low": "memory=1", "memory-high": "memory=99999999",
                     "memory-float": "memory=512.5", "timeout-negative": "timeout=-1",
                     "origin-bad": "origin=BAD",
                     "origin-lower": "origin=api"}.items():  # fmt: skip
    case("runs", f"start-{label}", "POST", f"/acts/~hs-actor/runs?{query}", 400, IV)
for label, ref, status, etype in [
    ("empty-name", "~", 400, IV), ("underscore", "~a_b", 400, IV), ("long-name", "~" + "a" * 64, 400, IV),
    ("other-user", "bob~bob-actor", 404, NF), ("long-id", "a" * 5000, 404, NF), ("nul", "%00", 404, NF),
    ("not-utf8", "%FF", 400, IR),
]:  # fmt: skip
    case("runs", f"actor-{label}-get", "GET", f"/acts/{ref}", status, etype)
    case("runs", f"actor-{label}-start", "POST", f"/acts/{ref}/runs", status, etype)
    case("runs", f"actor-{label}-list", "GET", f"/acts/{ref}/runs", status, etype)
    case("runs", f"actor-{label}-last", "GET", f"/acts/{ref}/runs/last", status, etype)
    case("runs", f"actor-{label}-last-update", "PUT", f"/acts/{ref}/runs/last", status, etype)
    case("runs", f"actor-{label}-last-abort", "POST", f"/acts/{ref}/runs/last/abort", status, etype)

# --- Content-Encoding that lies, bombs, bodies past the limits, Content-Length that lies.
TEXT = orjson.dumps([{"url": f"http://hostile.example/e{i}"} for i in range(20)])
GZ, BR = gzip.compress(TEXT), brotli.compress(TEXT)
LIES = {"gzip-random": ("gzip", os.urandom(64)), "gzip-truncated": ("gzip", GZ[: len(GZ) // 2]),
        "gzip-trailing-garbage": ("gzip", GZ + b"garbage!"), "gzip-of-brotli": ("gzip", BR),
        "deflate-random": ("deflate", b"\xff" * 64), "br-truncated": ("br", BR[: len(BR) // 2]),
        "br-plain": ("br", TEXT), "br-of-gzip": ("br", GZ)}  # fmt: skip
BODY_ROUTES = {
    **{name: JSON_ROUTES[name] for name in (
        "items-push", "request-add", "batch-add", "batch-delete", "request-put", "dataset-update",
        "queue-update", "head-lock", "run-update")},
    "run-start": ("POST", "/acts/~hs-actor/runs"),
}  # fmt: skip


def bomb(encoding: str, size: int) -> bytes:
    """A body that decodes to `size` zero bytes."""
    zeros = b"\0" * MIB
    if encoding == "br":
        compressor = brotli.Compressor(quality=5)
        parts: list[bytes] = [compressor.process(zeros) for _ in range(size // MIB)]
        return b"".join([*parts, compressor.finish()])
    stream = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    return b"".join(stream.compress(zeros) for _ in range(size // MIB)) + stream.flush()


# 16 KiB of gzip, 50 bytes of br: 16 MiB decoded. A run's INPUT is a record, with the record limit.
BOMBS = {encoding: bomb(encoding, 16 * MIB) for encoding in ("gzip", "deflate", "br")}
INPUT_BOMBS = {encoding: bomb(encoding, 2 * MAX_DECODED) for encoding in ("gzip", "br")}


def bombs_for(route: str) -> dict[str, bytes]:
    return INPUT_BOMBS if route == "run-start" else BOMBS


for route, (method, target) in BODY_ROUTES.items():
    for name, (encoding, body) in LIES.items():
        headers = (("Content-Encoding", encoding),)
        case("encoding", f"lie-{route}-{name}", method, target, 400, IV, headers=headers, body=body)
    for encoding in ("zstd", "gzip, gzip", "compress", "*"):
        headers = (("Content-Encoding", encoding),)
        case("encoding", f"unknown-{route}-{encoding}", method, target, 415, "unsupported-content-encoding",
             headers=headers, body=GZ)  # fmt: skip
    # Past the 10 MiB payload limit (the JSON bodies' 1 MiB, a run INPUT's MAX_DECODED): 413.
    etype = "record-too-large" if route == "run-start" else "request-too-large"
    for encoding, body in bombs_for(route).items():
        headers = (("Content-Encoding", encoding),)
        case("encoding", f"bomb-{route}-{encoding}", method, target, 413, etype, headers=headers, body=body)
ENCODED = {"gzip": ("gzip", GZ), "gzip-upper": ("GZIP", GZ), "x-gzip": ("x-gzip", GZ), "br": ("br", BR),
           "deflate": ("deflate", zlib.compress(TEXT)), "identity": ("identity", TEXT),
           "two-gzip-members": ("gzip", gzip.compress(TEXT[:9]) + gzip.compress(TEXT[9:]))}  # fmt: skip
for route in ("items-push", "batch-add"):
    method, target = BODY_ROUTES[route]
    for name, (encoding, body) in ENCODED.items():
        case(
            "encoding",
            f"ok-{route}-{name}",
            method,
            target,
            201,
            headers=(("Content-Encoding", encoding),),
            body=body,
        )
# Bodies past the limit, sent whole, declared, or chunked; bodies shorter or longer than they say.
AUTH = "Authorization: Bearer {token}\r\n"
for route in ("items-push", "batch-add", "request-add"):
    method, target = BODY_ROUTES[route]
    head = f"{method} /v2{target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{AUTH}"
    chunks = (b"100000\r\n" + b" " * 0x100000 + b"\r\n") * 11 + b"0\r\n\r\n"
    over = f"Content-Length: {PAYLOAD_LIMIT + 1}\r\n\r\n"
    case("size", f"over-{route}", method, target, 413, "request-too-large", body=b" " * (PAYLOAD_LIMIT + 1))
    for name, raw, status, etype in [
        ("declared-huge", b"Content-Length: 10737418240\r\n\r\n[{", 413, "request-too-large"),
        ("declared-over-by-one", over.encode(), 413, "request-too-large"),
        ("expect-continue-over", b"Expect: 100-continue\r\n" + over.encode(), 413, "request-too-large"),
        ("chunked-over", b"Transfer-Encoding: chunked\r\n\r\n" + chunks, 413, "request-too-large"),
        ("zero-with-body", b"Content-Length: 0\r\n\r\n[{}]", 400, None),
    ]:  # fmt: skip
        case("size", f"{name}-{route}", method, "", status, etype, raw=head.encode() + raw)
    case("size", f"longer-then-close-{route}", method, "", 400, IR, half_close=True,
         raw=head.encode() + b"Content-Length: 100\r\n\r\n[{}")  # fmt: skip
push = f"POST /v2{SDS}/items HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{AUTH}".encode()
case("size", "items-shorter-than-body", "POST", "", 201, raw=push + b"Content-Length: 2\r\n\r\n{}garbage")
case(
    "size",
    "items-chunked",
    "POST",
    "",
    201,
    raw=push + b"Transfer-Encoding: chunked\r\n\r\n1\r\n[\r\n3\r\n{}]\r\n0\r\n\r\n",
)
case("size", "items-at-limit", "POST", "/datasets/{big}/items", 201,
     body=b'[{"a": "' + b"x" * (PAYLOAD_LIMIT - 11) + b'"}]')  # fmt: skip
case("size", "run-update-over-json-limit", "PUT", RUN, 413, "request-too-large",
     body=orjson.dumps({"statusMessage": "x" * (MIB + 1)}))  # fmt: skip


# --- the table, one case at a time and then all at once


@pytest.mark.parametrize("c", TABLE.cases, ids=TABLE.ids)
def test_case(storages: Hostile, c: Case) -> None:
    check_case(storages, c)


def test_whole_table_concurrently_leaves_the_seeds_unchanged(tmp_path: Path, engine: Engine) -> None:
    """The table again, eight requests at a time on a server of its own (so the cases above, in whatever
    order, never meet what it made): the rules hold, the seeded dataset and queue are unchanged after it, the
    server still works, and nothing was logged as an unexpected error."""
    with storages_hostile(tmp_path, engine) as fresh:
        check_concurrently(fresh, TABLE.cases)
        assert_seeds_unchanged_and_server_healthy(fresh)
        assert_log_clean(fresh.server)


def test_bombs_are_refused_in_bounded_memory(storages: Hostile) -> None:
    """Every bomb, eight times over, on every endpoint that takes a body: a 413 before much is decoded, and
    the server's memory where it was (a refused push once held its 10 MiB until the garbage collector ran:
    twenty such grew the server by 300 MiB)."""
    pgid = storages.server.pid
    bombs = [
        Case("bomb", route, method, target, 413, headers=(("Content-Encoding", encoding),), body=body)
        for route, (method, target) in BODY_ROUTES.items()
        for encoding, body in bombs_for(route).items()
    ]
    before = group_rss(pgid)
    started = time.monotonic()
    with PeakRss(pgid) as rss:
        for c in bombs * 8:
            assert send(storages, c).status == 413, c.name
    after = group_rss(pgid)
    took = time.monotonic() - started
    print(f"\n{len(bombs) * 8} bombs in {took:.1f} s: server memory {before / MIB:.0f} MiB before,"
          f" {rss.peak / MIB:.0f} MiB at most, {after / MIB:.0f} MiB after")  # fmt: skip
    assert rss.growth < 128 * MIB, rss.growth
    assert after - before < 32 * MIB, (before, after)


def test_a_push_of_many_tiny_items_holds_memory_for_what_they_are(storages: Hostile) -> None:
    """400,000 empty objects in one push (1.2 MB, a few KiB gzipped) are stored, and the server's memory
    grows by about what they are, not by a buffer each (orjson's result for `{}` kept 4 KiB: 1.6 GB)."""
    count = 400_000
    body = gzip.compress(b"[" + b",".join([b"{}"] * count) + b"]", 9)
    pgid = storages.server.pid
    with storages.server.client(storages.tokens["bob"]) as as_bob:
        dataset = as_bob.post("/datasets").json()["data"]["id"]
        try:
            with PeakRss(pgid) as rss:
                pushed = as_bob.post(
                    f"/datasets/{dataset}/items",
                    content=body,
                    headers={"content-type": "application/json", "content-encoding": "gzip"},
                    timeout=120,
                )
            assert pushed.status_code == 201, pushed.text
            assert as_bob.get(f"/datasets/{dataset}").json()["data"]["itemCount"] == count
        finally:
            as_bob.delete(f"/datasets/{dataset}")
    print(f"\n{count} items in {len(body)} bytes: server memory grew {rss.growth / MIB:.0f} MiB at most")
    assert rss.growth < 256 * MIB, rss.growth


def test_run_finished_at_past_what_iso_carries_is_refused(storages: Hostile) -> None:
    with storages.server.client(storages.tokens["bob"]) as as_bob:
        run = as_bob.post("/acts/~bob-broken/runs").json()["data"]["id"]
        for moment in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
            assert as_bob.put(f"/actor-runs/{run}", json={"finishedAt": moment}).status_code == 400
        assert as_bob.get(f"/actor-runs/{run}").status_code == 200
        assert as_bob.get("/actor-runs").status_code == 200
