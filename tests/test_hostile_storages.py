"""Hostile input on the dataset, request-queue and run endpoints, each request with the answer it must get.

The rule and the raw client are test_hostile.py's (its helpers are used here): every request goes over a raw
socket to a real `satchel serve`, byte for byte as written, and gets a 4xx with the error envelope (or the
documented success, where odd input is still valid), never a 5xx, never a hang. Around the table: the seeded
dataset and queue are unchanged after it, zip bombs are refused in bounded memory, and the server still
works. test_every_storage_route_is_in_the_table checks the table against the routes (satchel/api/routing.py
ROUTES): every method of every dataset, request-queue and run route is sent something.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import brotli
import httpx
import orjson
import pytest

from satchel.api.routing import ROUTES
from satchel.service.queue_requests import request_id
from tests.conftest import Server, start_server, stop_server
from tests.test_hostile import (
    FORGED_TOKEN,
    Case,
    Hostile,
    PeakRss,
    Reply,
    cli,
    enc,
    exchange,
    group_rss,
    request_bytes,
)

MIB = 1024 * 1024
PAYLOAD_LIMIT = 10 * MIB  # a push or a batch, decoded (max_items_payload_bytes and the queues' limit)
MAX_DECODED = 64 * MIB  # this server's record limit, decoded: a run's INPUT is a record
SEED_ITEMS = [
    {"url": f"http://seed.example/{i}", "#hidden": i % 3, "tags": ["a", {"b": i}]} for i in range(40)
]
SEED_URLS = [f"http://seed.example/{i}" for i in range(12)]
RID_URL, LOCKED_URL = "http://hostile.example/1", "http://hostile.example/locked"
IV, IR, NF = "invalid-value", "invalid-request", "record-not-found"
TAKEN = "request-locked-by-another-client"
# Targets: {ds} and {q} are the seeds (only read here), {sds} and {sq} the scratch ones. In the scratch queue,
# {locked} is held by the clientKey `holder` and {rid} is pending.
DS, SDS, Q, SQ = "/datasets/{ds}", "/datasets/{sds}", "/request-queues/{q}", "/request-queues/{sq}"
ADD, PUT_RID, LOCK = SQ + "/requests", SQ + "/requests/{rid}", SQ + "/requests/{locked}/lock"
RUN = "/actor-runs/{run}"
ITEMS = DS + "/items?"

CASES: list[Case] = []


def case(
    category: str, name: str, method: str, target: str, status: int, type: str | None = None, **kw: Any
) -> None:
    CASES.append(Case(category, name, method, target, status, type, **kw))


def table(category: str, rows: list[tuple[Any, ...]]) -> None:
    """Rows of (name, method, target, status, error type[, body])."""
    for name, method, target, status, etype, *body in rows:
        case(category, name, method, target, status, etype, body=body[0] if body else b"")


def array(n: int, item: bytes = b"{}") -> bytes:
    return b"[" + b",".join([item] * n) + b"]"


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode()  # the standard encoder: it writes integers of any size


# --- 1. Bodies that are not JSON, or not the JSON an endpoint takes.
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

# --- 2. Wrong types in every field the handlers read.
BAD_FIELDS: dict[str, list[tuple[str, Any, int, str | None]]] = {
    "uniqueKey": [("number", 5, 400, IR), ("list", [], 400, IR), ("object", {}, 400, IR),
                  ("empty", "", 400, IR), ("bool", True, 400, IR), ("null", None, 201, None)],
    "url": [("number", 5, 400, IR), ("empty", "", 400, IR), ("list", [], 400, IR), ("object", {}, 400, IR),
            ("null", None, 400, IR)],
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
for kind, bad in (("datasets", NOT_NAMES | BAD_SCHEMAS), ("key-value-stores", NOT_NAMES | BAD_SCHEMAS),
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
}.items()])  # fmt: skip
table("runs", [(f"update-{label}", "PUT", RUN, 200, None, body) for label, body in {
    "status-null": b'{"status": null}', "run-id-other": b'{"runId": "other"}', "empty": b"{}", "no-body": b"",
    "message-nul": b'{"statusMessage": "a\\u0000b"}'}.items()])  # fmt: skip
table("runs", [(f"charge-{label}", "POST", RUN + "/charge", 400, IV, body) for label, body in {
    "event-number": b'{"eventName": 5}', "event-long": orjson.dumps({"eventName": "e" * 300}),
    "count-zero": b'{"eventName": "e", "count": 0}', "count-negative": b'{"eventName": "e", "count": -1}',
    "count-string": b'{"eventName": "e", "count": "1"}', "count-float": b'{"eventName": "e", "count": 1.5}',
    "count-bool": b'{"eventName": "e", "count": true}', "count-huge": b'{"eventName": "e", "count": 1e20}',
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
    case("runs", f"actor-{label}-start", "POST", f"/acts/{ref}/runs", status, etype)
    case("runs", f"actor-{label}-list", "GET", f"/acts/{ref}/runs", status, etype)
    case("runs", f"actor-{label}-last", "GET", f"/acts/{ref}/runs/last", status, etype)

# --- 3. Query parameters: out of range, of the wrong type, repeated, empty.
COUNTED = {
    "datasets-limit": "/datasets?limit=", "datasets-offset": "/datasets?offset=",
    "queues-limit": "/request-queues?limit=", "items-limit": SDS + "/items?limit=",
    "items-offset": SDS + "/items?offset=", "head-limit": SQ + "/head?limit=",
    "lock-limit": SQ + "/head/lock?lockSecs=0.001&limit=", "requests-limit": ADD + "?limit=",
    "runs-limit": "/actor-runs?limit=", "runs-offset": "/actor-runs?offset=", "wait": RUN + "?waitForFinish=",
    "actor-runs-limit": "/acts/~hs-actor/runs?limit=", "run-items-offset": RUN + "/dataset/items?offset=",
}  # fmt: skip
for i, value in enumerate(["-1", "1.5", "abc", "1e400", "nan", "0x10", "1_000", "%D9%A1", "-0.5", "%20"]):
    for label, target in COUNTED.items():
        method = "POST" if label == "lock-limit" else "GET"
        if (label, value) == ("items-limit", "%20"):  # items read `limit` leniently: a blank one is none
            case("query", f"{label}-{i}", method, target + value, 200)
        else:
            case("query", f"{label}-{i}", method, target + value, 400, IV)
for i, value in enumerate(["0", "-1", "1e20", "nan", "inf", "abc", "", "604801", "1_0", "%D9%A3", "0x10"]):
    case("query", f"lock-secs-{i}", "POST", SQ + f"/head/lock?lockSecs={value}", 400, IR)
    case("query", f"prolong-secs-{i}", "PUT", LOCK + f"?clientKey=holder&lockSecs={value}", 400, IR)
table("query", [
    ("lock-secs-missing", "POST", SQ + "/head/lock", 400, IR),
    ("lock-secs-repeated-empty-last", "POST", SQ + "/head/lock?lockSecs=60&lockSecs=", 400, IR),
    ("lock-secs-repeated", "POST", SQ + "/head/lock?lockSecs=&lockSecs=0.001&limit=1", 200, None),
    ("prolong-max", "PUT", LOCK + "?clientKey=holder&lockSecs=604800", 200, None),
    ("prolong-other-client", "PUT", LOCK + "?clientKey=thief&lockSecs=60", 409, TAKEN),
    ("release-other-client", "DELETE", LOCK + "?clientKey=thief", 409, TAKEN),
    ("prolong-absent", "PUT", SQ + "/requests/aaaaaaaaaaaaaaa/lock?lockSecs=60", 404, NF),
    ("head-limit-10001", "GET", SQ + "/head?limit=10001", 200, None),
    ("lock-limit-10001", "POST", SQ + "/head/lock?lockSecs=0.001&limit=10001", 200, None),
    ("head-empty-params", "GET", SQ + "/head?limit=&clientKey=", 200, None),
    ("forefront-empty", "POST", ADD + "?forefront=", 201, None, b'{"url": "http://hostile.example/ff"}'),
    ("last-run-status-bogus", "GET", "/acts/~hs-actor/runs/last?status=BOGUS", 400, IV),
    ("last-run-none", "GET", "/acts/~hs-idle/runs/last?status=ABORTED", 404, NF),
    ("wait-finished-run", "GET", "/actor-runs/{done}?waitForFinish=999999999", 200, None),
])  # fmt: skip
CLIENT_KEY_ROUTES = {
    "add": ("POST", ADD + "?", b'{"url": "http://hostile.example/ck"}'),
    "batch": ("POST", ADD + "/batch?", b"[]"),
    "put": ("PUT", PUT_RID + "?", orjson.dumps({"url": RID_URL})), "list": ("GET", ADD + "?", b""),
    "delete": ("DELETE", SQ + "/requests/aaaaaaaaaaaaaaa?", b""),
    "batch-delete": ("DELETE", ADD + "/batch?", b"[]"),
    "head": ("GET", SQ + "/head?", b""), "head-lock": ("POST", SQ + "/head/lock?lockSecs=0.001&", b""),
    "prolong": ("PUT", LOCK + "?lockSecs=60&", b""), "release": ("DELETE", LOCK + "?", b""),
    "unlock": ("POST", ADD + "/unlock?", b""),
}  # fmt: skip
for label, (method, target, body) in CLIENT_KEY_ROUTES.items():
    case("query", f"client-key-33-{label}", method, f"{target}clientKey={'k' * 33}", 400, IR, body=body)
    if label in ("add", "batch", "put", "prolong", "release"):
        case(
            "query",
            f"forefront-bad-{label}",
            method,
            f"{target}forefront=maybe&clientKey=holder",
            400,
            IV,
            body=body,
        )
for label, key in {
    "32": "k" * 32,
    "unicode": enc("日本 \x00"),
    "empty": "",
    "repeated": "a&clientKey=b",
}.items():
    case("query", f"client-key-{label}-head", "GET", SQ + f"/head?clientKey={key}", 200)
    case("query", f"client-key-{label}-unlock", "POST", ADD + f"/unlock?clientKey={key}", 200)
table("query", [(f"requests-{label}", "GET", f"{ADD}?{query}", status, IR if status == 400 else None)
                for label, query, status in [
    ("limit-10001", "limit=10001", 200), ("limit-0", "limit=0", 200),
    ("limit-huge", "limit=9007199254740992", 200),
    ("filter-bogus", "filter=bogus", 400), ("filter-empty-parts", "filter=pending,,locked", 200),
    ("cursor-garbage", "cursor=garbage", 400), ("cursor-not-object", "cursor=eyJ9", 400),
    ("cursor-id-number", "cursor=eyJyZXF1ZXN0SWQiOjV9", 400),
    ("cursor-and-start", "cursor=a&exclusiveStartId=b", 400),
    ("start-long", "exclusiveStartId=" + "z" * 5000, 200),
    ("empty-params", "limit=&cursor=&filter=&clientKey=", 200),
]])  # fmt: skip
table("query", [(f"items-{label}", "GET", ITEMS + query, status, etype) for label, query, status, etype in [
    ("limit-10001", "limit=10001", 200, None), ("limit-digits", "limit=" + "9" * 40, 200, None),
    ("limit-exp", "limit=1e3", 200, None), ("limit-repeated", "limit=1&limit=2", 200, None),
    ("empty-params", "offset=&limit=&desc=&fields=&omit=&format=&delimiter=&xmlRoot=", 200, None),
    ("offset-huge", "offset=9007199254740992", 200, None), ("desc-bad", "desc=maybe", 400, IV),
    ("format-unknown", "format=yaml", 400, IV), ("format-upper", "format=CSV", 200, None),
    ("format-nul", "format=json%00", 400, IV), ("format-long", "format=" + "x" * 5000, 400, IV),
    # A delimiter of one character, any but a quote or a line break.
    *[(f"delimiter-{label}", f"format=csv&delimiter={value}", 400, IR) for label, value in {
        "two": "ab", "many": ";" * 1000, "quote": "%22", "newline": "%0A", "cr": "%0D"}.items()],
    *[(f"delimiter-{label}", f"format=csv&delimiter={value}", 200, None) for label, value in {
        "tab": "%09", "nul": "%00", "letter": "a", "unicode": "%E6%97%A5"}.items()],
    ("view-unknown", "view=nope", 400, IV),
    ("signature-garbage", "signature=garbage", 200, None), ("bom-bad", "format=csv&bom=maybe", 400, IV),
    ("header-row-bad", "format=csv&skipHeaderRow=2", 400, IV),
    *[(f"{flag}-bad", f"{flag}=yes", 400, IV)
      for flag in ("clean", "skipHidden", "skipEmpty", "skipFailedPages", "simplified", "attachment")],
    # xmlRoot and xmlRow that are not XML names are refused; any XML name is taken.
    *[(f"{param}-{label}", f"format=xml&{param}={value}", 400, IV) for param in ("xmlRoot", "xmlRow")
      for label, value in {"digit": "1abc", "space": "a%20b", "markup": "%3Cx%3E", "colon": "a:b",
                           "long": "a" * 201, "nul": "%00", "ampersand": "a%26b",
                           "dash-first": "-a"}.items()],
    *[(f"{param}-{label}", f"format=rss&{param}={value}", 200, None) for param in ("xmlRoot", "xmlRow")
      for label, value in {"unicode": "%E6%97%A5%E6%9C%AC", "dots": "a-b.c_d", "xml-word": "xml"}.items()],
]])  # fmt: skip
# Fields, omit, unwind and flatten with odd names: nothing to refuse, in every format.
ODD_NAMES = {"empty-parts": ",,,", "nul": "%00", "unicode": "%E6%97%A5%E6%9C%AC", "hidden": "%23hidden",
             "dotted": "a.b", "proto": "__proto__", "long": "f" * 10000,
             "many": ",".join(f"f{i}" for i in range(2000)),
             "control": "%01", "nonchar": "%EF%BF%BE", "spaces": "%20url%20,%20tags"}  # fmt: skip
for param in ("fields", "omit", "unwind", "flatten"):
    for label, value in ODD_NAMES.items():
        for fmt in ("json", "csv", "xml", "xlsx", "html", "rss", "jsonl"):
            if fmt == "json" or label in ("nul", "unicode", "control", "nonchar", "spaces"):
                case(
                    "query",
                    f"items-{param}-{label}-{fmt}",
                    "GET",
                    ITEMS + f"format={fmt}&{param}={value}",
                    200,
                )
for label, query in {"desc": "desc=maybe", "unnamed": "unnamed=yes", "ownership": "ownership=mine",
                     "ownership-case": "ownership=OWNEDBYME"}.items():  # fmt: skip
    case("query", f"datasets-{label}", "GET", f"/datasets?{query}", 400, IV)
    case("query", f"queues-{label}", "GET", f"/request-queues?{query}", 400, IV)
for label, query in {"limit-10001": "limit=10001", "empty": "offset=&limit=&desc=",
                     "repeated": "limit=1&limit=2&desc=1&desc=0"}.items():  # fmt: skip
    for collection in ("datasets", "request-queues", "actor-runs"):
        case("query", f"{collection}-{label}", "GET", f"/{collection}?{query}", 200)
for label, query, status in [
    ("status-bogus", "status=BOGUS", 400), ("status-parts", "status=SUCCEEDED,,RUNNING", 200),
    ("after-word", "startedAfter=garbage", 400),
    # Times the API could not show (before 1970 or past 9999 in UTC) are refused as filters too.
    ("after-year-0", "startedAfter=0001-01-01T00:00:00%2B14:00", 400),
    ("before-year-10000", "startedBefore=9999-12-31T23:59:59-14:00", 400), ("origin-bad", "origin=BAD", 400),
    ("desc-bad", "desc=maybe", 400),
]:  # fmt: skip
    etype = IV if status == 400 else None
    case("query", f"runs-{label}", "GET", f"/actor-runs?{query}", status, etype)
    case("query", f"actor-runs-{label}", "GET", f"/acts/~hs-actor/runs?{query}", status, etype)

# --- 4. References: `username~name` with odd characters, ids of another kind, other users' things, tokens.
REFS = {"tilde": "~", "tildes": "~~", "three-parts": "admin~hs-seed~x", "no-name": "admin~",
        "unknown-user": "nobody~x",
        "nul": "~%00", "space": "~hs-seed%20", "unicode": "~%E6%97%A5%E6%9C%AC", "underscore": "~a_b",
        "long-name": "~" + "a" * 64, "long-id": "a" * 10000, "dot": ".", "encoded-other": "bob%7Ebob-ds",
        "other-user": "bob~bob-ds", "other-id": "{bob_ds}", "kvs-id": "{kvs}", "run-id": "{run}",
        "queue-id": "{q}"}  # fmt: skip
for label, ref in REFS.items():
    queue = "{ds}" if ref == "{q}" else ref  # a dataset's id names no queue
    table("refs", [
        (f"dataset-{label}", "GET", f"/datasets/{ref}", 404, NF),
        (f"dataset-delete-{label}", "DELETE", f"/datasets/{ref}", 404, NF),
        (f"items-{label}", "GET", f"/datasets/{ref}/items", 404, NF),
        (f"push-{label}", "POST", f"/datasets/{ref}/items", 404, NF, b"{}"),
        (f"statistics-{label}", "GET", f"/datasets/{ref}/statistics", 404, NF),
        (f"shares-{label}", "GET", f"/datasets/{ref}/shares", 404, NF),
        (f"queue-{label}", "GET", f"/request-queues/{queue}", 404, NF),
        (f"queue-delete-{label}", "DELETE", f"/request-queues/{queue}", 404, NF),
        (f"queue-shares-{label}", "GET", f"/request-queues/{queue}/shares", 404, NF),
        (f"head-{label}", "GET", f"/request-queues/{queue}/head", 404, NF),
        (f"lock-{label}", "POST", f"/request-queues/{queue}/head/lock?lockSecs=1", 404, NF),
        (f"add-{label}", "POST", f"/request-queues/{queue}/requests", 404, NF, b'{"url": "http://x/"}'),
    ])  # fmt: skip
table("refs", [
    *[(f"dataset-{label}-ok", "GET", f"/datasets/{ref}", 200, None) for label, ref in {
        "named": "admin~hs-seed", "own": "~hs-seed", "encoded-tilde": "%7Ehs-seed",
        "slash": "admin%2Fhs-seed"}.items()],
    ("dataset-not-utf8", "GET", "/datasets/%FF", 400, IR),
    ("run-of-kvs-id", "GET", "/actor-runs/{kvs}", 404, NF),
    ("run-of-dataset-id", "GET", "/actor-runs/{ds}/dataset", 404, NF),
    ("other-users-last-run", "GET", "/acts/bob~bob-actor/runs/last/dataset", 404, NF),
    ("chained-unknown-below", "GET", RUN + "/dataset/nope", 404, "page-not-found"),
    ("chained-bad-limit", "GET", "/actors/~hs-actor/runs/last/request-queue/head?limit=-1", 400, IV),
    ("chained-bad-lock", "POST", RUN + "/request-queue/head/lock?lockSecs=0", 400, IR),
    ("request-of-another-queue", "GET", Q + "/requests/{rid}", 404, NF),
    *[(f"request-id-{label}{suffix}", method, SQ + f"/requests/{rid}{path}", 404, NF)
      for label, rid in {"unicode": "%E6%97%A5", "nul": "%00", "long": "a" * 5000, "short": "a"}.items()
      for suffix, method, path in (("", "GET", ""), ("-delete", "DELETE", ""),
                                   ("-lock", "PUT", "/lock?lockSecs=5"))],
    # Sharing: with nobody, with oneself, an access that is none, a username that cannot be.
    ("share-unknown-user", "PUT", SDS + "/shares/nobody", 404, "user-not-found", b'{"access": "READ"}'),
    ("share-self", "PUT", SQ + "/shares/admin", 400, IV, b'{"access": "READ"}'),
    ("share-access-bad", "PUT", SDS + "/shares/bob", 400, IV, b'{"access": "ADMIN"}'),
    ("share-access-missing", "PUT", SQ + "/shares/bob", 400, IV, b"{}"),
    ("share-user-not-utf8", "PUT", SDS + "/shares/%FF", 400, IR, b'{"access": "READ"}'),
    ("share-user-long", "PUT", SQ + "/shares/" + "u" * 100, 400, IV, b'{"access": "READ"}'),
    ("unshare-unknown", "DELETE", SQ + "/shares/nobody", 404, "user-not-found"),
    ("unshare-not-utf8", "DELETE", SDS + "/shares/%FF", 400, IR),
    ("unshare-other-users", "DELETE", "/datasets/{bob_ds}/shares/admin", 404, NF),
])  # fmt: skip
for label, (method, path, body) in {
    "get": ("GET", "", b""), "put": ("PUT", "", b'{"status": "SUCCEEDED"}'), "abort": ("POST", "/abort", b""),
    "charge": ("POST", "/charge", b'{"eventName": "e"}'), "items": ("GET", "/dataset/items", b""),
    "push": ("POST", "/dataset/items", b"{}"), "record": ("GET", "/key-value-store/records/INPUT", b""),
    "head": ("GET", "/request-queue/head", b""), "lock": ("POST", "/request-queue/head/lock?lockSecs=1", b""),
}.items():  # fmt: skip
    case("refs", f"other-users-run-{label}", method, "/actor-runs/{bob_run}" + path, 404, NF, body=body)
    case("refs", f"no-run-{label}", method, "/actor-runs/nope" + path, 404, NF, body=body)
for label, (method, target, body) in {
    "push": ("POST", DS + "/items", b"{}"), "add": ("POST", Q + "/requests", b'{"url": "http://x/"}'),
    "lock": ("POST", Q + "/head/lock?lockSecs=1", b""), "run": ("PUT", RUN, b"{}"),
}.items():  # fmt: skip
    # Anyone may read a run by its id when its access allows: without a token, one that does not is not found.
    none = (404, "record-or-token-not-found") if label == "run" else (401, "token-not-provided")
    case("tokens", f"none-{label}", method, target, *none, token=None, body=body)
    case("tokens", f"forged-{label}", method, target, 401, "invalid-token", token="forged", body=body)
    case("tokens", f"revoked-{label}", method, target, 401, "invalid-token", token="revoked", body=body)
    case("tokens", f"other-user-{label}", method, target, 404, token="bob", body=body)
# A signature that grants nothing is no signature: the answer a missing dataset gets.
case("tokens", "none-items-signature-garbage", "GET", DS + "/items?signature=garbage", 404,
     "record-or-token-not-found", token=None)  # fmt: skip
table("methods", [(label, method, target, 405, "method-not-allowed") for label, (method, target) in {
    "dataset-patch": ("PATCH", SDS), "items-delete": ("DELETE", SDS + "/items"),
    "statistics-put": ("PUT", SDS + "/statistics"), "batch-get": ("GET", ADD + "/batch"),
    "lock-get": ("GET", SQ + "/head/lock"), "head-post": ("POST", SQ + "/head"),
    "unlock-get": ("GET", ADD + "/unlock"),
    "runs-post": ("POST", "/actor-runs"), "run-delete": ("DELETE", RUN), "abort-get": ("GET", RUN + "/abort"),
}.items()])  # fmt: skip
for label, target in {
    "items": SDS + "/items",
    "head": SQ + "/head",
    "run": RUN,
    "stats": SDS + "/statistics",
}.items():
    case("methods", f"head-{label}", "HEAD", target, 200)

# --- 5. Content-Encoding that lies, bombs, bodies past the limits, Content-Length that lies.
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
        return b"".join(compressor.process(zeros) for _ in range(size // MIB)) + compressor.finish()
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


# --- the server, its seeds, and the table


@pytest.fixture(scope="module")
def storages_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("hostile-storages") / "data"
    server = start_server(data_dir, env={"SATCHEL_MAX_DECODED_BYTES": str(MAX_DECODED)})
    yield server
    stop_server(server)


def seed_digest(http: httpx.Client, values: dict[str, str]) -> str:
    """What the table must leave as it was: the seeded dataset's items and the seeded queue's requests."""
    dataset = http.get(f"/datasets/{values['ds']}").json()["data"]
    items = http.get(f"/datasets/{values['ds']}/items").text
    queue = http.get(f"/request-queues/{values['q']}").json()["data"]
    listed = http.get(f"/request-queues/{values['q']}/requests", params={"limit": 100}).json()["data"]
    counts = [queue[k] for k in ("name", "totalRequestCount", "handledRequestCount", "pendingRequestCount")]
    return orjson.dumps([dataset["name"], dataset["itemCount"], items, counts, listed["items"]]).decode()


@pytest.fixture(scope="module")
def hostile(storages_server: Server) -> Hostile:
    server = storages_server
    bob = cli(server.data_dir, "users", "create", "bob").split("API token: ")[1].strip()
    revoked = cli(server.data_dir, "tokens", "create", "admin").strip().split()[-1]
    cli(server.data_dir, "tokens", "revoke", revoked)
    tokens = {"admin": server.token, "bob": bob, "revoked": revoked, "forged": FORGED_TOKEN}
    with server.client() as http, server.client(bob) as as_bob:

        def made(response: httpx.Response) -> str:
            assert response.status_code in (200, 201), response.text
            return str(response.json()["data"]["id"])

        values = {
            "ds": made(http.post("/datasets", params={"name": "hs-seed"})),
            "sds": made(http.post("/datasets", params={"name": "hs-scratch"})),
            "big": made(http.post("/datasets", params={"name": "hs-big"})),
            "q": made(http.post("/request-queues", params={"name": "hs-seed-q"})),
            "sq": made(http.post("/request-queues", params={"name": "hs-scratch-q"})),
            "kvs": made(http.post("/key-value-stores", params={"name": "hs-kvs"})),
            "run": made(http.post("/acts/~hs-actor/runs", json={"start": SEED_URLS[0]})),
            "done": made(http.post("/acts/~hs-actor/runs")),
            "bob_run": made(as_bob.post("/acts/~bob-actor/runs")),
            "bob_ds": made(as_bob.post("/datasets", params={"name": "bob-ds"})),
            "rid": request_id(RID_URL),
            "locked": request_id(LOCKED_URL),
        }
        made(http.post("/acts/~hs-idle/runs"))  # an Actor with no ABORTED run
        assert http.put(f"/actor-runs/{values['done']}", json={"status": "SUCCEEDED"}).status_code == 200
        assert http.post(f"/datasets/{values['ds']}/items", json=SEED_ITEMS).status_code == 201
        seeded = [{"url": url, "userData": {"n": i}} for i, url in enumerate(SEED_URLS)]
        q = f"/request-queues/{values['q']}"
        assert http.post(f"{q}/requests/batch", json=seeded).status_code == 201
        handled = {"url": SEED_URLS[0], "handledAt": "2024-01-01T00:00:00Z"}
        assert http.put(f"{q}/requests/{request_id(SEED_URLS[0])}", json=handled).status_code == 200
        sq = f"/request-queues/{values['sq']}"
        assert http.post(f"{sq}/requests", json={"url": LOCKED_URL}).status_code == 201
        locked = http.post(f"{sq}/head/lock", params={"lockSecs": 3600, "limit": 1, "clientKey": "holder"})
        assert [item["id"] for item in locked.json()["data"]["items"]] == [values["locked"]]
        assert http.post(f"{sq}/requests", json={"url": RID_URL}).status_code == 201
        digest = seed_digest(http, values)
    return Hostile(server, int(server.base_url.rsplit(":", 1)[1]), values, tokens, digest)


def send(hostile: Hostile, c: Case) -> Reply:
    return exchange(hostile.port, request_bytes(c, hostile), head=c.method == "HEAD", half_close=c.half_close)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_case(hostile: Hostile, c: Case) -> None:
    reply = send(hostile, c)
    assert reply.status < 500, (reply.status, reply.body[:500])
    assert reply.status == c.status, (reply.status, reply.body[:500])
    if c.method == "HEAD":
        assert reply.body == b""
    elif c.status >= 400:
        error = reply.error()
        if c.type is not None:
            assert error["type"] == c.type, error
        assert reply.headers.get("content-type", "").startswith("application/json")


def _path(c: Case) -> str:
    """The path a case sends, after /v2, without its query."""
    target = c.target if c.raw is None else c.raw.decode("latin-1").split(" ")[1].removeprefix("/v2")
    return target.split("?")[0]


def test_every_storage_route_is_in_the_table() -> None:
    """Each method of each dataset, request-queue and run route is sent hostile input. The routes below a run
    (api/chained.py) call their storage route's own handler: the few in the table stand for the rest."""
    sent = {(c.method, _path(c)) for c in CASES}
    missing = []
    for route in ROUTES:
        template = route.template.removeprefix("/v2")
        if not template.startswith(("/datasets", "/request-queues", "/actor-runs", "/acts")):
            continue
        if template.startswith(("/actor-runs/{runId}/", "/acts/{actorId}/runs/last/")):
            continue
        pattern = re.compile("^" + re.sub(r"\\\{[A-Za-z]+\\\}", "[^/]+", re.escape(template)) + "$")
        missing += [f"{m} {route.template}" for m in route.methods if not any(
            method == m and pattern.match(path) for method, path in sent)]  # fmt: skip
    assert missing == []


def test_whole_table_concurrently(hostile: Hostile) -> None:
    """The table again, eight requests at a time: never a 5xx, always the envelope on an error."""
    with ThreadPoolExecutor(8) as pool:
        for c, reply in zip(CASES, pool.map(lambda c: send(hostile, c), CASES), strict=True):
            assert 200 <= reply.status < 500, (c.id, reply.status, reply.body[:300])
            if reply.status >= 400 and c.method != "HEAD":
                reply.error()


def test_bombs_are_refused_in_bounded_memory(hostile: Hostile) -> None:
    """Every bomb, eight times over, on every endpoint that takes a body: a 413 before much is decoded, and
    the server's memory where it was (a refused push once held its 10 MiB until the garbage collector ran:
    twenty such grew the server by 300 MiB)."""
    pgid = hostile.server.process.pid
    bombs = [
        Case("bomb", route, method, target, 413, headers=(("Content-Encoding", encoding),), body=body)
        for route, (method, target) in BODY_ROUTES.items()
        for encoding, body in bombs_for(route).items()
    ]
    before = group_rss(pgid)
    started = time.monotonic()
    with PeakRss(pgid) as rss:
        for c in bombs * 8:
            assert send(hostile, c).status == 413, c.name
    after = group_rss(pgid)
    took = time.monotonic() - started
    print(f"\n{len(bombs) * 8} bombs in {took:.1f} s: server memory {before / MIB:.0f} MiB before,"
          f" {rss.peak / MIB:.0f} MiB at most, {after / MIB:.0f} MiB after")  # fmt: skip
    assert rss.growth < 128 * MIB, rss.growth
    assert after - before < 32 * MIB, (before, after)


def test_seeds_unchanged_and_server_healthy(hostile: Hostile) -> None:
    values = hostile.values
    with hostile.server.client() as http:
        assert seed_digest(http, values) == hostile.seed_digest
        # A push, a read, an add, a lock and a handled mark, as the clients make them.
        dataset = http.post("/datasets", params={"name": "hs-after"}).json()["data"]
        items = gzip.compress(orjson.dumps([{"n": i, "#h": True} for i in range(5)]))
        pushed = http.post(
            f"/datasets/{dataset['id']}/items", content=items, headers={"content-encoding": "gzip"}
        )
        assert pushed.status_code == 201
        read = http.get(f"/datasets/{dataset['id']}/items", params={"clean": 1, "desc": 1, "limit": 2})
        assert read.json() == [{"n": 4}, {"n": 3}]
        assert read.headers["x-apify-pagination-total"] == "5"
        made = http.post("/request-queues", params={"name": "hs-after-q"}).json()["data"]
        queue = f"/request-queues/{made['id']}"
        added = http.post(f"{queue}/requests/batch", json=[{"url": "http://after.example/"}]).json()["data"]
        rid = added["processedRequests"][0]["requestId"]
        locked = http.post(f"{queue}/head/lock", params={"lockSecs": 60, "clientKey": "after"}).json()["data"]
        assert [item["id"] for item in locked["items"]] == [rid]
        handled = {"url": "http://after.example/", "handledAt": "2026-01-01T00:00:00Z"}
        assert (
            http.put(f"{queue}/requests/{rid}", params={"clientKey": "after"}, json=handled).status_code
            == 200
        )
        counts = http.get(queue).json()["data"]
        assert (counts["totalRequestCount"], counts["handledRequestCount"]) == (1, 1)
        assert http.get(f"/actor-runs/{values['run']}/dataset/items").status_code == 200


def test_no_unexpected_errors_logged(hostile: Hostile) -> None:
    text = (hostile.server.data_dir.parent / f"server-{hostile.port}.log").read_text(errors="replace")
    assert "unexpected error" not in text, text[-5000:]
    assert "Traceback" not in text, text[-5000:]


def test_summary() -> None:
    counts = Counter(c.category for c in CASES)
    print(
        "\nhostile storage cases: "
        + ", ".join(f"{k} {n}" for k, n in counts.items())
        + f"; total {len(CASES)}"
    )
    assert len(CASES) >= 1000


def test_run_finished_at_past_what_iso_carries_is_refused(hostile: Hostile) -> None:
    with hostile.server.client(hostile.tokens["bob"]) as as_bob:
        run = as_bob.post("/acts/~bob-broken/runs").json()["data"]["id"]
        for moment in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
            assert as_bob.put(f"/actor-runs/{run}", json={"finishedAt": moment}).status_code == 400
        assert as_bob.get(f"/actor-runs/{run}").status_code == 200
        assert as_bob.get("/actor-runs").status_code == 200
