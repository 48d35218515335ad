"""Hostile query strings on the dataset, request-queue and run endpoints: out of range, of the wrong type,
repeated, empty; odd field names to pick, omit, unwind and flatten.

Each request goes over a raw socket to a real `satchel serve`, byte for byte as written, and gets the status
and error type it must (tests/harness/hostile.py holds the client and the rule); the seeded dataset, queue and
runs are in tests/harness/hostile_storages.py. test_hostile_storage_routes.py checks that every dataset,
queue and run route is sent something.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.harness.hostile import (
    Case,
    Engine,
    Hostile,
    Table,
    assert_log_clean,
    check_case,
    check_concurrently,
    enc,
)
from tests.harness.hostile_storages import (
    ADD,
    IR,
    ITEMS,
    IV,
    LOCK,
    NF,
    PUT_RID,
    RID_URL,
    RUN,
    SDS,
    SQ,
    TAKEN,
    assert_seeds_unchanged_and_server_healthy,
    storages_hostile,
)

TABLE = Table()
case = TABLE.case


def table(category: str, rows: list[tuple[Any, ...]]) -> None:
    """Rows of (name, method, target, status, error type[, body])."""
    for name, method, target, status, etype, *body in rows:
        case(category, name, method, target, status, etype, body=body[0] if body else b"")


# --- Query parameters: out of range, of the wrong type, repeated, empty.
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


def test_a_client_key_with_nul_holds_its_locks(storages: Hostile) -> None:
    """A clientKey is any text of up to 32 characters, NUL included: its locks are its own, on every engine
    (PostgreSQL, whose text cannot hold NUL, answered 500 to every call with one)."""
    key, other = "日本\x00a", "日本"
    with storages.server.client() as http:
        queue = http.post("/request-queues").json()["data"]["id"]
        q = f"/request-queues/{queue}"
        added = http.post(f"{q}/requests", params={"clientKey": key}, json={"url": "http://nul.example/"})
        assert added.status_code == 201, added.text
        rid = added.json()["data"]["requestId"]
        locked = http.post(f"{q}/head/lock", params={"lockSecs": 60, "clientKey": key})
        assert [item["id"] for item in locked.json()["data"]["items"]] == [rid]
        assert http.get(f"{q}/requests/{rid}").json()["data"]["lockByClient"] == key
        for taker in (other, "\x00"):
            taken = http.put(f"{q}/requests/{rid}/lock", params={"lockSecs": 60, "clientKey": taker})
            assert taken.status_code == 409, taken.text
        assert (
            http.put(f"{q}/requests/{rid}/lock", params={"lockSecs": 60, "clientKey": key}).status_code == 200
        )
        unlocked = http.post(f"{q}/requests/unlock", params={"clientKey": key}).json()["data"]
        assert unlocked == {"unlockedCount": 1}


def test_nul_in_a_start_id_pages_as_on_every_engine(storages: Hostile) -> None:
    """No request id holds NUL: the requests after a start id (or a cursor's) with one are those after its
    part before the NUL (PostgreSQL, whose text cannot hold NUL, answered 500 to both)."""
    with storages.server.client() as http:
        q = f"/request-queues/{http.post('/request-queues').json()['data']['id']}"
        for n in range(6):
            assert http.post(f"{q}/requests", json={"url": f"http://nul.example/{n}"}).status_code == 201

        def ids(**params: str) -> list[str]:
            response = http.get(f"{q}/requests", params=params)
            assert response.status_code == 200, response.text
            return [item["id"] for item in response.json()["data"]["items"]]

        every = ids()
        assert len(every) == 6
        middle = every[2]
        assert ids(exclusiveStartId="\x00") == every
        assert ids(exclusiveStartId=middle + "\x00x") == every[3:]
        assert ids(exclusiveStartId=middle[:3] + "\x00") == [i for i in every if i > middle[:3]]
        cursor = base64.urlsafe_b64encode(orjson.dumps({"requestId": middle + "\x00"})).decode().rstrip("=")
        assert ids(cursor=cursor) == every[3:]


def test_nul_in_request_ids_finds_nothing(storages: Hostile) -> None:
    """A request id or uniqueKey with NUL names no request: a batch delete processes it, deletes nothing."""
    sq = f"/request-queues/{storages.values['sq']}"
    with storages.server.client() as http:
        before = http.get(sq).json()["data"]["totalRequestCount"]
        gone = http.request("DELETE", f"{sq}/requests/batch", json=[{"id": "a\x00"}, {"uniqueKey": "u\x00"}])
        assert gone.status_code == 200, gone.text
        assert gone.json()["data"]["unprocessedRequests"] == []
        assert http.get(f"{sq}/requests/a%00").status_code == 404
        assert http.get(sq).json()["data"]["totalRequestCount"] == before


def test_exit_codes_are_32_bit(storages: Hostile) -> None:
    """An exit code is a 32-bit signed integer on every engine (2**31 was taken by SQLite and failed with a
    500 on PostgreSQL's integer)."""
    with storages.server.client() as http:
        run = http.post("/acts/~hs-exit/runs").json()["data"]["id"]
        for code in (2**31 - 1, -(2**31)):
            done = http.put(f"/actor-runs/{run}", json={"exitCode": code})
            assert done.status_code == 200, done.text
            assert done.json()["data"]["exitCode"] == code
        for code in (2**31, -(2**31) - 1):
            assert http.put(f"/actor-runs/{run}", json={"exitCode": code}).status_code == 400
