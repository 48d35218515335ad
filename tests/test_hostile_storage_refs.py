"""Hostile references on the dataset, request-queue and run endpoints: `username~name` with odd characters,
ids of another kind, other users' things, tokens and signatures.

Each request goes over a raw socket to a real `satchel serve`, byte for byte as written, and gets the status
and error type it must (tests/harness/hostile.py holds the client and the rule); the seeded dataset, queue and
runs are in tests/harness/hostile_storages.py. test_hostile_storage_routes.py checks that every dataset,
queue and run route is sent something.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness.hostile import (
    Case,
    Engine,
    Hostile,
    Table,
    assert_log_clean,
    check_case,
    check_concurrently,
)
from tests.harness.hostile_storages import (
    ADD,
    DS,
    IR,
    IV,
    NF,
    RUN,
    SDS,
    SQ,
    Q,
    assert_seeds_unchanged_and_server_healthy,
    storages_hostile,
)

TABLE = Table()
case = TABLE.case


def table(category: str, rows: list[tuple[Any, ...]]) -> None:
    """Rows of (name, method, target, status, error type[, body])."""
    for name, method, target, status, etype, *body in rows:
        case(category, name, method, target, status, etype, body=body[0] if body else b"")


# --- References: `username~name` with odd characters, ids of another kind, other users' things, tokens.
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
    "delete": ("DELETE", "", b""),
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
    "runs-post": ("POST", "/actor-runs"), "abort-get": ("GET", RUN + "/abort"),
}.items()])  # fmt: skip
# A run is deleted only once it has finished; the seeded one is still running.
case("methods", "run-delete-running", "DELETE", RUN, 400, "invalid-request")
for label, target in {
    "items": SDS + "/items",
    "head": SQ + "/head",
    "run": RUN,
    "stats": SDS + "/statistics",
}.items():
    case("methods", f"head-{label}", "HEAD", target, 200)


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
