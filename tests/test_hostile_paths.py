"""Hostile input in the path: record keys and store names, percent-encoding, dot segments, unknown routes
and the Console's paths, HEAD on everything. Sent over a raw socket to a seeded server, each case with the
status and error type it must get (tests/harness/hostile.py holds the client and the rule)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.harness.hostile import (
    REC,
    SCRATCH,
    SEED_NAME,
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

# Record keys: any character outside a-z A-Z 0-9 !-_.'() is refused, in every method; so are overlong keys.
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
case("record-key", "len256-get", "GET", SCRATCH + "/records/" + "a" * 256, 200)  # seeded (SCRATCH_RECORDS)
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

# Percent-encoding: decoded one segment at a time, as UTF-8, after routing.
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
case("percent-encoding", "user-nul", "GET", "/users/%00", 404, "record-not-found")
case("percent-encoding", "non-ascii-path", "GET", REC + "caf\xe9", 400, envelope=False)

# Path traversal: dot segments are never resolved into another endpoint, and never reach the disk.
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

# Unknown routes.
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
case("routes", "user-unknown", "GET", "/users/nobody-here", 404, "record-not-found")
case("routes", "user-long", "GET", "/users/" + "u" * 5000, 404, "record-not-found")

# HEAD on everything: the GET's status and headers, never a body.
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


# --- the table, one case at a time and then all at once


@pytest.mark.parametrize("c", TABLE.cases, ids=TABLE.ids)
def test_case(hostile: Hostile, c: Case) -> None:
    check_case(hostile, c)


def test_whole_table_concurrently_leaves_the_seed_unchanged(tmp_path: Path, engine: Engine) -> None:
    """The table again, eight requests at a time on a server of its own: the rules hold, the seeded store is
    unchanged after it, and nothing was logged as an unexpected error."""
    check_table_leaves_kv_seed_unchanged(tmp_path, TABLE.cases, engine)
