"""Hostile query strings: limits and offsets out of range, and ?method= overrides. Sent over a raw socket
to a seeded server, each case with the status and error type it must get (tests/harness/hostile.py holds
the client and the rule)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.hostile import (
    REC,
    STORE,
    Case,
    Engine,
    Hostile,
    Table,
    check_case,
    check_table_leaves_kv_seed_unchanged,
    enc,
)

TABLE = Table()
case = TABLE.case

# Limits and offsets out of range: refused (400 invalid-value) or clamped (documented), never a 500.
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

# ?method= abuse.
for name, (target, method_param, status, error_type) in {
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
    case("method-override", name, "GET", f"{target}?method={method_param}", status, error_type)
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


# NUL in a key-value store's reference or a user's: nothing is named so (PostgreSQL is not asked: its text
# cannot hold NUL).
for label, ref in {"id": "a%00b", "name": "~hostile-seed%00", "user": "admin%00~hostile-seed"}.items():
    case("pagination", f"store-nul-{label}", "GET", f"/key-value-stores/{ref}/keys", 404, "record-not-found")
    case("pagination", f"store-nul-{label}-put", "PUT", f"/key-value-stores/{ref}/records/k", 404,
         "record-not-found", body=b"x")  # fmt: skip
case("pagination", "user-nul-inside", "GET", "/users/admin%00", 404, "record-not-found")


# --- the table, one case at a time and then all at once


@pytest.mark.parametrize("c", TABLE.cases, ids=TABLE.ids)
def test_case(hostile: Hostile, c: Case) -> None:
    check_case(hostile, c)


def test_whole_table_concurrently_leaves_the_seed_unchanged(tmp_path: Path, engine: Engine) -> None:
    """The table again, eight requests at a time on a server of its own: the rules hold, the seeded store is
    unchanged after it, and nothing was logged as an unexpected error."""
    check_table_leaves_kv_seed_unchanged(tmp_path, TABLE.cases, engine)


def test_nul_in_prefix_and_start_key_pages_as_on_every_engine(hostile: Hostile) -> None:
    """No key holds NUL: a prefix with one matches nothing, and the keys after a start key with one are those
    after its part before the NUL (PostgreSQL, whose text cannot hold NUL, answered 500 to both)."""
    sid = hostile.values["sid"]
    with hostile.server.client() as http:

        def keys(**params: str) -> list[str]:
            response = http.get(f"/key-value-stores/{sid}/keys", params=params)
            assert response.status_code == 200, response.text
            return [item["key"] for item in response.json()["data"]["items"]]

        every = keys()
        assert keys(prefix="k\x00") == keys(prefix="\x00") == []
        assert keys(exclusiveStartKey="\x00") == every
        assert keys(exclusiveStartKey="k\x00") == [k for k in every if k > "k"]
        assert keys(exclusiveStartKey="k1\x00x", prefix="k") == []
        assert keys(exclusiveStartKey="j\x00", prefix="k") == ["k1"]
