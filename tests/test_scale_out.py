"""Scale-out over real HTTP: several `satchel serve` nodes on one PostgreSQL and one S3 bucket.

What the design promises for postgres+s3 (any node serves any request, with read-after-write consistency;
a rename, access change, share or token revocation on one node applies on every node; retention and stats
are right for the whole deployment) is checked here through the official Python client and raw HTTP, with
each node a real `satchel serve` process. The outages are in test_scale_out_outages.py.

Where the system is eventually consistent by design (reads counted in memory and flushed once a second,
retention sweeps) the tests poll until a deadline and say so, and so does the token revocation test, which
the CLI makes as a separate process (it also reports on which request the node refused). Everything said to
hold at once is checked on the very next request, without retries (the clients here never retry): changes
made on A are checked on B many times over, on kept-alive connections, because a node serving from a cache
its notification had not reached yet showed on only about 2% of such checks.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import Server
from tests.harness.backends import Backends
from tests.harness.scaleout import (
    CHANGE_CYCLES,
    INLINE_MAX,
    LARGE,
    NOTIFY_DEADLINE,
    USAGE_DEADLINE,
    Deployment,
    apify,
    assert_no_internal_errors,
    body_for,
    cli,
    deployment,
    http_client,
    measured,
    node_log,
    start_nodes,
    stop_nodes,
    unique,
)

pytestmark = pytest.mark.timeout(120)


# --- two nodes on one PostgreSQL and one bucket


@pytest.fixture(scope="module")
def pair(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    where = deployment("postgres+s3", backends, tmp_path_factory.mktemp("pair"))
    where.nodes = start_nodes(where.root, where.node_env())
    yield where
    stop_nodes(where.nodes)
    assert_no_internal_errors(*where.nodes)


def test_read_after_write_across_nodes(pair: Deployment) -> None:
    a, b = pair.nodes
    client_a, client_b = apify(a), apify(b)
    store = client_a.key_value_stores().get_or_create(name=unique("raw"))
    on_a, on_b = client_a.key_value_store(store.id), client_b.key_value_store(store.id)

    # Written through A, read whole through B on the very next request: inline and blob.
    on_a.set_record("small", {"hello": "world", "n": 1})
    got = on_b.get_record("small")
    assert got is not None
    assert got["value"] == {"hello": "world", "n": 1}
    assert got["content_type"].startswith("application/json")
    large = body_for("large", LARGE + 7)
    on_a.set_record("large", large, content_type="application/octet-stream")
    got = on_b.get_record_as_bytes("large")
    assert got is not None
    assert got["value"] == large
    assert got["content_type"] == "application/octet-stream"

    # Each new value written on one node is what the other reads next, switching between inline and blob.
    for i in range(8):
        writer, reader = (on_a, on_b) if i % 2 == 0 else (on_b, on_a)
        value = body_for(f"flip-{i}", LARGE + i if i % 3 == 0 else 100 + i)
        writer.set_record("flip", value, content_type=f"application/x-flip-{i}")
        got = reader.get_record_as_bytes("flip")
        assert got is not None
        assert (got["value"], got["content_type"]) == (value, f"application/x-flip-{i}"), i

    # Keys listed on B include what A wrote, with the sizes stored.
    listed = {item.key: item.size for item in on_b.list_keys().items}
    assert listed["small"] > 0
    assert listed["large"] > INLINE_MAX  # a blob, as stored (the client may send it gzipped)
    assert "flip" in listed

    # A record deleted on A is gone on B at once.
    on_a.delete_record("large")
    assert on_b.get_record_as_bytes("large") is None


def test_concurrent_writers_through_both_nodes(pair: Deployment) -> None:
    a, b = pair.nodes
    store = apify(a).key_value_stores().get_or_create(name=unique("race"))
    writers, rounds = 4, 6
    written: dict[str, bytes] = {}  # content type -> body: each value has its own type

    def write(writer: int) -> None:
        node = (a, b)[writer % 2]
        records = apify(node).key_value_store(store.id)
        for i in range(rounds):
            content_type = f"application/x-writer-{writer}-round-{i}"
            # Inline and blob values interleave, so the race also crosses the inline/blob switch.
            size = LARGE + 31 * writer + i if (writer + i) % 2 else 200 + 31 * writer + i
            value = body_for(content_type, size)
            written[content_type] = value
            records.set_record("contested", value, content_type=content_type)

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))

    finals = []
    for node in (a, b):
        got = apify(node).key_value_store(store.id).get_record_as_bytes("contested")
        assert got is not None
        assert got["content_type"] in written, got["content_type"]
        # Body and content type belong to the same write: nothing torn, nothing mixed.
        assert got["value"] == written[got["content_type"]]
        finals.append((got["content_type"], got["value"]))
    assert finals[0] == finals[1]
    listed = apify(b).key_value_store(store.id).list_keys().items
    assert [item.key for item in listed] == ["contested"]
    # Every acknowledged write is counted once, whichever node took it, and the stored bytes are the one
    # record's (as stored: the client may have sent it gzipped).
    for node in (a, b):
        stats = apify(node).key_value_store(store.id).get().stats  # type: ignore[union-attr]
        assert stats is not None
        assert stats.write_count == writers * rounds
        assert stats.storage_bytes == listed[0].size


def test_stats_count_both_nodes(pair: Deployment) -> None:
    a, b = pair.nodes
    store = apify(a).key_value_stores().get_or_create(name=unique("stats"))
    per_node = {a.base_url: (5, 3), b.base_url: (4, 6)}  # writes, reads
    for node in (a, b):
        records = apify(node).key_value_store(store.id)
        writes, _ = per_node[node.base_url]
        for i in range(writes):
            records.set_record(f"k{i}", f"v{i}", content_type="text/plain")
    # Writes are counted in their own transaction: exact at once, on both nodes.
    for node in (a, b):
        stats = apify(node).key_value_store(store.id).get().stats  # type: ignore[union-attr]
        assert stats is not None
        assert stats.write_count == 9
        assert stats.read_count == 0
    for node in (a, b):
        records = apify(node).key_value_store(store.id)
        _, reads = per_node[node.base_url]
        for i in range(reads):
            assert records.get_record(f"k{i % 4}") is not None
    # Reads are counted in memory and flushed by each node once a second: poll until both nodes show all 9.
    began = time.monotonic()
    seen: dict[str, int] = {}
    while True:
        for node in (a, b):
            stats = apify(node).key_value_store(store.id).get().stats  # type: ignore[union-attr]
            assert stats is not None
            assert stats.read_count is not None
            assert stats.read_count <= 9, "a read was counted twice"
            assert stats.write_count == 9
            seen[node.base_url] = stats.read_count
        if all(count == 9 for count in seen.values()):
            break
        assert time.monotonic() - began < USAGE_DEADLINE, f"reads counted so far: {seen}"
        time.sleep(0.05)
    measured("read_count_converged", time.monotonic() - began)


def test_rename_applies_on_other_node(pair: Deployment) -> None:
    a, b = pair.nodes
    client_a, client_b = apify(a), apify(b)
    old, new = unique("before"), unique("after")
    store = client_a.key_value_stores().get_or_create(name=old)
    client_a.key_value_store(store.id).set_record("r", "x", content_type="text/plain")
    # B has looked the store up by name and by id before the rename.
    assert client_b.key_value_store(f"~{old}").get().id == store.id  # type: ignore[union-attr]
    assert client_b.key_value_store(store.id).get_record("r") is not None

    assert client_a.key_value_store(store.id).update(name=new).name == new
    found = client_b.key_value_store(f"~{new}").get()
    assert found is not None
    assert (found.id, found.name) == (store.id, new)
    assert client_b.key_value_store(f"~{old}").get() is None
    assert client_b.key_value_store(f"admin~{new}").get_record("r") is not None
    assert client_b.key_value_store(f"~{old}").get_record("r") is None
    assert client_b.key_value_store(store.id).get().name == new  # type: ignore[union-attr]
    # The old name is free again, for a new store, through B.
    again = client_b.key_value_stores().get_or_create(name=old)
    assert again.id != store.id


def test_access_change_applies_on_other_node(pair: Deployment) -> None:
    a, b = pair.nodes
    store = apify(a).key_value_stores().get_or_create(name=unique("access"))
    on_a = apify(a).key_value_store(store.id)
    on_a.set_record("public", "visible", content_type="text/plain")
    record = f"/key-value-stores/{store.id}/records/public"
    # Anonymous reads through B on one kept-alive connection: the next request after a change reaches B
    # within a millisecond or so, as soon as a cache there could still hold the old access.
    with httpx.Client(base_url=b.api, timeout=30) as anonymous_b:
        # B has refused (and so may have cached the store as private) before the first change.
        assert anonymous_b.get(record).status_code == 404
        for i in range(CHANGE_CYCLES):
            on_a.update(general_access="ANYONE_WITH_ID_CAN_READ")
            opened = anonymous_b.get(record)
            assert (opened.status_code, opened.content) == (200, b"visible"), (i, opened.text)
            on_a.update(general_access="RESTRICTED")
            closed = anonymous_b.get(record)
            assert closed.status_code == 404, (i, closed.text)
            assert closed.json()["error"]["type"] == "record-or-token-not-found"


def test_share_and_revoke_apply_on_other_node(pair: Deployment) -> None:
    a, b = pair.nodes
    username = unique("reader")
    out = cli(pair, "users", "create", username)
    reader_token = re.search(r"API token: (\S+)", out).group(1)  # type: ignore[union-attr]
    store = apify(a).key_value_stores().get_or_create(name=unique("shared"))
    apify(a).key_value_store(store.id).set_record("doc", "for readers", content_type="text/plain")
    as_reader_b = apify(b, reader_token).key_value_store(store.id)
    # B has answered the reader "no such record" (and so may have cached "no grant") before the share.
    assert as_reader_b.get_record("doc") is None
    with http_client(a) as http_a:
        for i in range(CHANGE_CYCLES):
            granted = http_a.put(f"/key-value-stores/{store.id}/shares/{username}", json={"access": "READ"})
            assert granted.status_code == 200, granted.text
            got = as_reader_b.get_record("doc")
            assert got is not None, f"cycle {i}: B still refuses the reader after the share"
            assert got["value"] == "for readers"
            revoked = http_a.delete(f"/key-value-stores/{store.id}/shares/{username}")
            assert revoked.status_code == 204
            assert as_reader_b.get_record("doc") is None, f"cycle {i}: B still lets the reader in"


def test_token_revoked_by_cli_is_refused_by_nodes(pair: Deployment) -> None:
    a, b = pair.nodes
    token = cli(pair, "tokens", "create", "admin").strip()
    with http_client(b, token) as on_b, http_client(a, token) as on_a:
        # Both nodes have accepted (and cached) the token.
        assert on_b.get("/users/me").status_code == 200
        assert on_a.get("/users/me").status_code == 200
        cli(pair, "tokens", "revoke", token)
        revoked_at = time.monotonic()
        # The CLI is another process: its change reaches the nodes by NOTIFY. Poll B until a short deadline.
        tries = 1
        while (answer := on_b.get("/users/me")).status_code == 200:
            assert time.monotonic() - revoked_at < NOTIFY_DEADLINE, "B still accepts a revoked token"
            time.sleep(0.005)
            tries += 1
        measured("token_revocation_reached_other_node", time.monotonic() - revoked_at)
        print(f"B refused the revoked token on request {tries} after the CLI returned")
        assert answer.status_code == 401
        assert answer.json()["error"]["type"] == "invalid-token"
        assert on_a.get("/users/me").status_code == 401
    # The admin's own token still works everywhere.
    assert apify(b).user().get() is not None


def test_store_deleted_on_one_node_is_gone_on_other(pair: Deployment) -> None:
    a, b = pair.nodes
    store = apify(a).key_value_stores().get_or_create(name=unique("doomed"))
    apify(a).key_value_store(store.id).set_record("big", body_for("big", LARGE), content_type="x/y")
    on_b = apify(b).key_value_store(store.id)
    assert on_b.get_record_as_bytes("big") is not None  # B has the store cached
    apify(a).key_value_store(store.id).delete()
    assert on_b.get() is None
    assert on_b.get_record_as_bytes("big") is None
    with http_client(b) as http_b:
        put = http_b.put(f"/key-value-stores/{store.id}/records/again", content=b"x")
        assert put.status_code == 404, put.text
        keys = http_b.get(f"/key-value-stores/{store.id}/keys")
        assert keys.status_code == 404


# --- retention with two nodes sweeping


@pytest.mark.slow
def test_retention_with_two_nodes_sweeping(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> None:
    retention = 2.0
    where = deployment("postgres+s3", backends, tmp_path_factory.mktemp("retention"))
    env = where.node_env(
        SATCHEL_RETENTION_SECONDS=str(int(retention)),
        SATCHEL_SWEEP_INTERVAL_SECONDS="0.2",
        SATCHEL_LOG_LEVEL="info",  # each sweep that deletes logs how many stores it deleted
    )
    nodes = where.nodes = start_nodes(where.root, env)
    try:
        _retention(nodes, retention)
    finally:
        stop_nodes(nodes)
    # Expired stores were deleted once in all: the nodes' counts of deleted stores add up to them.
    deleted = [
        int(n) for node in nodes for n in re.findall(r"retention: deleted (\d+) expired", node_log(node))
    ]
    assert sum(deleted) == 3, deleted
    assert_no_internal_errors(*nodes)


def _retention(nodes: list[Server], retention: float) -> None:
    http = [http_client(node) for node in nodes]
    try:
        idle: dict[str, float] = {}  # store id -> when its last use (a write) was sent
        for i in range(3):
            made = http[i % 2].post("/key-value-stores")
            assert made.status_code == 201
            store_id = made.json()["data"]["id"]
            idle[store_id] = time.monotonic()
            put = http[i % 2].put(f"/key-value-stores/{store_id}/records/r", content=body_for("r", LARGE))
            assert put.status_code == 201, put.text
        made = http[0].post("/key-value-stores")
        busy = made.json()["data"]["id"]
        acked: dict[str, bytes] = {}
        began = time.monotonic()
        gone_at: dict[str, float] = {}
        i = 0
        # Keep `busy` in use (a write every ~0.5 s, through alternating nodes) for 3 retention periods, while
        # watching the idle ones go (GET of a store is no use of it). The sweeps run every 0.2 s.
        while time.monotonic() - began < 3 * retention:
            key = f"w{i}"
            value = body_for(key, LARGE if i % 3 == 0 else 64)
            written = http[i % 2].put(f"/key-value-stores/{busy}/records/{key}", content=value)
            assert written.status_code == 201, (i, written.text)
            acked[key] = value
            i += 1
            next_write = time.monotonic() + 0.5
            while time.monotonic() < next_write:
                for store_id, last_use in idle.items():
                    if store_id in gone_at:
                        continue
                    answers = [h.get(f"/key-value-stores/{store_id}").status_code for h in http]
                    now = time.monotonic()
                    assert set(answers) <= {200, 404}, answers
                    if 404 in answers:
                        # Never before the retention period has passed since its last use was sent (the
                        # server stamps the use after it was sent, and deletes it only once that stamp is
                        # older than the retention period).
                        assert now - last_use > retention, f"deleted after {now - last_use:.2f} s"
                        gone_at[store_id] = now
                time.sleep(0.05)
        # Polled with a deadline: sweeps run every 0.2 s, so the idle stores went soon after expiring.
        assert set(gone_at) == set(idle), "idle stores were not deleted within three retention periods"
        measured(
            "retention_idle_store_deleted_after_last_use",
            max(gone_at[s] - idle[s] for s in idle),
        )
        for store_id in idle:
            for h in http:
                assert h.get(f"/key-value-stores/{store_id}").status_code == 404
                assert h.get(f"/key-value-stores/{store_id}/records/r").status_code == 404
        # The busy store was never deleted: every acknowledged write to it is readable on both nodes.
        assert len(acked) >= 8
        for h in http:
            assert h.get(f"/key-value-stores/{busy}").status_code == 200
            for key, value in acked.items():
                got = h.get(f"/key-value-stores/{busy}/records/{key}")
                assert (got.status_code, got.content) == (200, value), key
    finally:
        for h in http:
            h.close()


# --- the first start of several nodes at once


def test_nodes_started_together_on_a_fresh_database(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> None:
    where = deployment("postgres+s3", backends, tmp_path_factory.mktemp("together"))
    token = "apify_api_" + uuid.uuid4().hex + "tg00"
    nodes = start_nodes(where.root, where.node_env(), token=token, together=True)
    try:
        listing = cli(where, "users", "list")
        rows = [line.split() for line in listing.splitlines()[1:] if line.strip()]
        assert [row[0] for row in rows] == ["admin"], listing
        assert rows[0][3] == "1", listing  # one token: the same one given to both nodes, kept once
        for node in nodes:
            me = httpx.get(f"{node.api}/users/me", headers={"authorization": f"Bearer {token}"}, timeout=30)
            assert me.status_code == 200, me.text
            assert me.json()["data"]["username"] == "admin"
        made = apify(nodes[0], token).key_value_stores().get_or_create(name="together")
        assert apify(nodes[1], token).key_value_store("~together").get().id == made.id  # type: ignore[union-attr]
    finally:
        stop_nodes(nodes)
    assert_no_internal_errors(*nodes)
