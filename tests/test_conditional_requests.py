"""ETags and conditional requests on records, on every engine: 304, 412, compare-and-set under contention.

A record's ETag is the SHA-256 of its body as stored. GET and HEAD send it with Last-Modified and answer
If-None-Match / If-Modified-Since with 304; PUT and DELETE honour If-Match and If-None-Match (412 when the
record is not as required). The check is made by the engine in the transaction that commits the write, so
writers racing on one record, through one node or two, never both win: the counter tests show no lost
update, and the create-only race exactly one creator.

The HTTP tests run against real servers (`every_engine`); the engine's own check (with no early check above
it) and the upkeep of records written before ETags are tested in-process on each engine.
"""

from __future__ import annotations

import gzip
import hashlib
import secrets
import threading
from collections.abc import AsyncIterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from satchel.clock import now_ms
from satchel.storage import GeneralAccess, NewStore, Storage, StoreRow
from satchel.storage.blobs.base import BlobMissing, BlobStore
from satchel.storage.conditions import PreconditionFailed, WriteCondition
from satchel.storage.postgres.records import PostgresRecords
from satchel.storage.sqlite.records import SqliteRecords
from tests.conftest import Server, apps_on, every_engine, start_server, stop_server
from tests.harness.backends import COMBOS, Backends
from tests.harness.engine import Body, Run, runner

pytestmark = pytest.mark.timeout(300)
server = every_engine()

KIB = 1024
LARGE = 160 * KIB  # above the default inline limit (128 KiB): kept as a blob
SIZES = {"inline": 100, "blob": LARGE}
WRITERS = 8
INCREMENTS = 12  # each fought over by all the WRITERS: about 4 PUTs refused with 412 for each one that lands


def tag(data: bytes) -> str:
    return f'"{hashlib.sha256(data).hexdigest()}"'


def url(store_id: str, key: str) -> str:
    return f"/key-value-stores/{store_id}/records/{key}"


def new_store(http: httpx.Client) -> str:
    response = http.post("/key-value-stores")
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def put(http: httpx.Client, path: str, body: bytes, **headers: str) -> httpx.Response:
    return http.put(path, content=body, headers={"content-type": "application/octet-stream", **headers})


def assert_412(response: httpx.Response) -> None:
    assert response.status_code == 412, response.text
    error = response.json()["error"]
    assert error["type"] == "precondition-failed"
    assert "If-Match" in error["message"]


# --- reads: ETag, Last-Modified, 304


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_reads_carry_the_body_hash_and_last_modified(http: httpx.Client, size: int) -> None:
    store_id = new_store(http)
    body = secrets.token_bytes(size)
    before = now_ms() // 1000
    stored = put(http, url(store_id, "k"), body)
    assert stored.status_code == 201
    assert stored.headers["etag"] == tag(body)  # a compare-and-set loop needs no read after a write
    got = http.get(url(store_id, "k"))
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["etag"] == tag(body)
    assert got.headers["accept-ranges"] == "bytes"
    modified = int(parsedate_to_datetime(got.headers["last-modified"]).timestamp())
    assert before <= modified <= now_ms() // 1000
    head = http.head(url(store_id, "k"))
    assert head.status_code == 200
    for name in ("etag", "last-modified", "accept-ranges", "content-length"):
        assert head.headers[name] == got.headers[name]
    changed = secrets.token_bytes(size)
    assert put(http, url(store_id, "k"), changed).headers["etag"] == tag(changed)
    assert http.get(url(store_id, "k")).headers["etag"] == tag(changed)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_if_none_match_and_if_modified_since_give_304(http: httpx.Client, size: int) -> None:
    store_id = new_store(http)
    body = secrets.token_bytes(size)
    put(http, url(store_id, "k"), body)
    current = http.get(url(store_id, "k"))
    etag, last_modified = current.headers["etag"], current.headers["last-modified"]
    for method in ("GET", "HEAD"):
        for value in (etag, f'"other", {etag}', "*", f"W/{etag}"):
            response = http.request(method, url(store_id, "k"), headers={"if-none-match": value})
            assert response.status_code == 304, (method, value)
            assert response.content == b""
            assert response.headers["etag"] == etag
            assert response.headers["last-modified"] == last_modified
            assert response.headers["cache-control"] == "no-cache"
        fresh = http.request(method, url(store_id, "k"), headers={"if-none-match": '"other"'})
        assert fresh.status_code == 200
        assert fresh.headers["etag"] == etag
        # A copy a browser or proxy keeps is checked again before each use: the record may change any time.
        assert fresh.headers["cache-control"] == "no-cache"
        since = http.request(method, url(store_id, "k"), headers={"if-modified-since": last_modified})
        assert since.status_code == 304
        older = "Mon, 01 Jan 2001 00:00:00 GMT"
        assert (
            http.request(method, url(store_id, "k"), headers={"if-modified-since": older}).status_code == 200
        )
        bad = http.request(method, url(store_id, "k"), headers={"if-modified-since": "not a date"})
        assert bad.status_code == 200
        # If-None-Match takes precedence: a tag that does not match means 200 whatever the date says.
        both = {"if-none-match": '"other"', "if-modified-since": last_modified}
        assert http.request(method, url(store_id, "k"), headers=both).status_code == 200
    assert http.get(url(store_id, "k"), headers={"if-none-match": '"other"'}).content == body
    # If-Match on a read: 412 unless it names the current tag.
    assert_412(http.get(url(store_id, "k"), headers={"if-match": '"other"'}))
    assert http.get(url(store_id, "k"), headers={"if-match": etag}).status_code == 200


def test_a_compressed_record_has_the_hash_of_its_stored_bytes(http: httpx.Client) -> None:
    store_id = new_store(http)
    packed = gzip.compress(b"compressible " * 1000)
    put(http, url(store_id, "z"), packed, **{"content-encoding": "gzip"})
    encoded = http.get(url(store_id, "z"), headers={"accept-encoding": "gzip"})
    assert encoded.headers["etag"] == tag(packed)
    assert encoded.headers["accept-ranges"] == "none"
    # Sent decoded it is another representation of the same content: the weak tag.
    decoded = http.get(url(store_id, "z"), headers={"accept-encoding": "identity"})
    assert decoded.content == b"compressible " * 1000
    assert decoded.headers["etag"] == f"W/{tag(packed)}"
    revalidated = http.get(
        url(store_id, "z"), headers={"accept-encoding": "identity", "if-none-match": tag(packed)}
    )
    assert revalidated.status_code == 304
    assert revalidated.headers["etag"] == f"W/{tag(packed)}"
    # A weak tag never satisfies If-Match (strong comparison); the strong one does.
    assert_412(put(http, url(store_id, "z"), b"x", **{"if-match": f"W/{tag(packed)}"}))
    assert put(http, url(store_id, "z"), b"x", **{"if-match": tag(packed)}).status_code == 201


# --- writes: If-Match, If-None-Match, 412


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_conditional_put(http: httpx.Client, size: int) -> None:
    store_id = new_store(http)
    first, second = secrets.token_bytes(size), secrets.token_bytes(size)
    path = url(store_id, "k")
    assert_412(put(http, path, first, **{"if-match": "*"}))  # nothing there to match
    assert http.get(path).status_code == 404
    assert put(http, path, first, **{"if-none-match": "*"}).status_code == 201
    assert_412(put(http, path, second, **{"if-none-match": "*"}))
    assert_412(put(http, path, second, **{"if-match": '"0000"'}))
    assert_412(put(http, path, second, **{"if-none-match": tag(first)}))
    assert http.get(path).content == first
    stored = put(http, path, second, **{"if-match": f'"0000", {tag(first)}'})
    assert stored.status_code == 201
    assert stored.headers["etag"] == tag(second)
    assert put(http, path, first, **{"if-match": "*"}).status_code == 201
    assert http.get(path).content == first
    # POST is the same write.
    assert_412(http.post(path, content=second, headers={"if-match": tag(second)}))
    assert http.post(path, content=second, headers={"if-match": tag(first)}).status_code == 201
    # The store's stats count only the writes that happened.
    stats = http.get(f"/key-value-stores/{store_id}").json()["data"]["stats"]
    assert stats["writeCount"] == 4
    assert stats["storageBytes"] == size


def test_conditional_delete(http: httpx.Client) -> None:
    store_id = new_store(http)
    path = url(store_id, "k")
    body = b"to be deleted"
    assert_412(http.delete(path, headers={"if-match": "*"}))
    assert put(http, path, body).status_code == 201
    assert_412(http.delete(path, headers={"if-match": '"stale"'}))
    assert_412(http.delete(path, headers={"if-none-match": "*"}))
    assert http.get(path).content == body
    assert http.delete(path, headers={"if-match": tag(body)}).status_code == 204
    assert http.get(path).status_code == 404
    assert http.delete(path, headers={"if-none-match": "*"}).status_code == 204  # absent: the intent holds


def test_clients_without_conditions_behave_as_before(http: httpx.Client) -> None:
    store_id = new_store(http)
    path = url(store_id, "k")
    assert put(http, path, b"one").status_code == 201
    assert put(http, path, b"two").status_code == 201
    assert http.get(path).content == b"two"
    assert http.delete(path).status_code == 204
    assert http.delete(path).status_code == 204


# --- compare-and-set under contention


@dataclass
class Tally:
    successes: int = 0
    conflicts: int = 0


def increment(
    http: httpx.Client, path: str, times: int, pad: int, tally: Tally, lock: threading.Lock
) -> None:
    """Add 1 to the counter `times` times, each by read, then write with If-Match, retried on 412."""
    done = 0
    while done < times:
        current = http.get(path)
        assert current.status_code == 200, current.text
        value = orjson.loads(current.content)["n"]
        body = orjson.dumps({"n": value + 1, "pad": "p" * pad})
        written = put(http, path, body, **{"if-match": current.headers["etag"]})
        if written.status_code == 412:
            with lock:
                tally.conflicts += 1
            continue
        assert written.status_code == 201, written.text
        done += 1
        with lock:
            tally.successes += 1


def run_counter(nodes: list[Server], store_id: str, *, pad: int) -> Tally:
    """WRITERS threads (spread over the nodes) each incrementing INCREMENTS times; the counter must end at
    the number of successful writes, which is all of them."""
    path = url(store_id, "counter")
    with nodes[0].client() as http:
        assert put(http, path, orjson.dumps({"n": 0, "pad": "p" * pad})).status_code == 201
    tally, lock = Tally(), threading.Lock()
    start = threading.Barrier(WRITERS)

    def writer(index: int) -> None:
        with nodes[index % len(nodes)].client() as http:
            start.wait(timeout=30)
            increment(http, path, INCREMENTS, pad, tally, lock)

    with ThreadPoolExecutor(WRITERS) as pool:
        for future in [pool.submit(writer, i) for i in range(WRITERS)]:
            future.result()
    with nodes[-1].client() as http:
        final = orjson.loads(http.get(path).content)["n"]
    assert tally.successes == WRITERS * INCREMENTS
    assert final == tally.successes, f"lost updates: {tally.successes - final} ({tally.conflicts} conflicts)"
    print(f"counter: {final} increments, {tally.conflicts} conflicts retried")
    return tally


@pytest.mark.parametrize("pad", [0, LARGE], ids=["inline", "blob"])
def test_compare_and_set_counter_loses_no_update(server: Server, http: httpx.Client, pad: int) -> None:
    run_counter([server], new_store(http), pad=pad)


def race_create(nodes: list[Server], store_id: str, size: int) -> None:
    """WRITERS writers create one key at once with If-None-Match: *; exactly one wins, and its body stays."""
    path = url(store_id, f"once-{size}")
    start = threading.Barrier(WRITERS)
    bodies = [secrets.token_bytes(size) for _ in range(WRITERS)]

    def create(index: int) -> int:
        with nodes[index % len(nodes)].client() as http:
            start.wait(timeout=30)
            return put(http, path, bodies[index], **{"if-none-match": "*"}).status_code

    with ThreadPoolExecutor(WRITERS) as pool:
        statuses = list(pool.map(create, range(WRITERS)))
    assert sorted(statuses) == [201] + [412] * (WRITERS - 1), statuses
    with nodes[0].client() as http:
        assert http.get(path).content == bodies[statuses.index(201)]


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_create_only_race_has_one_winner(server: Server, http: httpx.Client, size: int) -> None:
    race_create([server], new_store(http), size)


# --- two nodes on one PostgreSQL and one bucket


@pytest.fixture(scope="module")
def two_nodes(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    where = backends.locations("postgres+s3")
    env = {"SATCHEL_DATABASE": where["database"], "SATCHEL_BLOB_STORE": where["blob_store"]}
    env.update(backends.env("postgres+s3"))
    root = tmp_path_factory.mktemp("two-nodes")
    nodes = [start_server(root / f"node{i}" / "data", env=env) for i in range(2)]
    yield nodes
    for node in nodes:
        stop_server(node)


@pytest.mark.parametrize("pad", [0, LARGE], ids=["inline", "blob"])
def test_compare_and_set_across_two_nodes(two_nodes: list[Server], pad: int) -> None:
    with two_nodes[0].client() as http:
        store_id = new_store(http)
    run_counter(two_nodes, store_id, pad=pad)


def test_create_only_race_across_two_nodes(two_nodes: list[Server]) -> None:
    with two_nodes[1].client() as http:
        store_id = new_store(http)
    for size in SIZES.values():
        race_create(two_nodes, store_id, size)


# --- in-process, on each engine: the engine's own check, and records written before ETags

INLINE_MAX = 1024


class Recording:
    """A blob store that notes the names written and deleted through it."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.written: list[str] = []
        self.deleted: list[str] = []

    async def put(self, name: str, chunks: AsyncIterable[bytes]) -> int:
        self.written.append(name)
        return await self.inner.put(name, chunks)

    async def delete(self, names: list[str]) -> None:
        self.deleted += names
        await self.inner.delete(names)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=COMBOS)
def run(request: pytest.FixtureRequest, backends: Backends, tmp_path: Path) -> Run:
    settings = backends.settings(
        str(request.param), tmp_path / "data", inline_max_bytes=INLINE_MAX, blob_grace_seconds=0
    )
    return runner(lambda: settings)


async def _store(storage: Storage) -> StoreRow:
    user = await storage.users.create("id-alice", "alice", 1, default_general_access=GeneralAccess.RESTRICTED)
    store, _ = await storage.stores.create(
        NewStore(
            f"store-{secrets.token_hex(6)}", user.id, "s", GeneralAccess.FOLLOW_USER_SETTING, "k", None, 1
        )
    )
    return store


async def _body(storage: Storage, store: StoreRow, key: str) -> bytes | None:
    record = await storage.records.read(store.pk, key)
    return None if record is None else b"".join([chunk async for chunk in record.stream()])


def test_the_engine_checks_the_condition_as_it_commits_and_drops_the_refused_blob(run: Run) -> None:
    async def work(storage: Storage) -> None:
        store = await _store(storage)
        records = storage.records
        recording = Recording(records.blobs)  # type: ignore[attr-defined]
        records.blobs = recording  # type: ignore[attr-defined]

        async def write(data: bytes, condition: WriteCondition | None) -> str | None:
            head = await records.write(
                store.pk, "k", content_type="t", content_encoding=None, body=Body(data), now=now_ms(),
                condition=condition,
            )  # fmt: skip
            return head.etag

        first, second, third = (secrets.token_bytes(5000) for _ in range(3))
        etag = await write(first, WriteCondition(if_none_match=frozenset({"*"})))
        assert etag == hashlib.sha256(first).hexdigest()
        head = await records.head(store.pk, "k")
        assert head is not None
        assert head.etag == etag
        refused = [
            WriteCondition(if_none_match=frozenset({"*"})),
            WriteCondition(if_match=frozenset({"0" * 64})),
            WriteCondition(if_none_match=frozenset({etag})),
        ]
        for condition in refused:
            with pytest.raises(PreconditionFailed):
                await write(second, condition)
        assert (
            await write(second, WriteCondition(if_match=frozenset({etag})))
            == hashlib.sha256(second).hexdigest()
        )
        with pytest.raises(PreconditionFailed):  # the tag it was written over is stale now
            await write(third, WriteCondition(if_match=frozenset({etag})))
        assert await _body(storage, store, "k") == second
        # Every refused body was uploaded, then removed: no blob and no upload note is left behind.
        assert len(recording.written) == 2 + len(refused) + 1
        kept = {recording.written[0], recording.written[len(refused) + 1]}
        for name in set(recording.written) - kept:
            assert name in recording.deleted
            with pytest.raises(BlobMissing):
                async for _ in recording.inner.read(name):
                    pass
        assert await records.abandoned_uploads(now_ms() + 1, 10) == []
        row = await storage.stores.by_id(store.id)
        assert row is not None
        assert (row.stats.write_count, row.stats.storage_bytes) == (2, len(second))
        # Deletes: refused when the record is not as required, done when it is.
        with pytest.raises(PreconditionFailed):
            await records.delete(
                store.pk, "k", now=now_ms(), condition=WriteCondition(if_match=frozenset({etag}))
            )
        assert await _body(storage, store, "k") == second
        current = WriteCondition(if_match=frozenset({hashlib.sha256(second).hexdigest()}))
        assert await records.delete(store.pk, "k", now=now_ms(), condition=current)
        assert await records.read(store.pk, "k") is None

    run(work)


async def forget_etag(records: object, store_pk: int, key: str) -> None:
    """Make the record look written before ETags existed (its etag column NULL)."""
    sql = "UPDATE records SET etag = NULL WHERE store_pk = {} AND key = {}"
    if isinstance(records, SqliteRecords):
        await records.db.write(lambda conn: conn.execute(sql.format("?", "?"), (store_pk, key)))
    else:
        assert isinstance(records, PostgresRecords)
        await records.db.execute(sql.format("$1", "$2"), store_pk, key)


def test_fill_etag_fills_only_a_record_still_without_one(run: Run) -> None:
    async def work(storage: Storage) -> None:
        store = await _store(storage)
        records = storage.records
        for key in ("a", "b"):
            await records.write(
                store.pk, key, content_type="t", content_encoding=None, body=Body(b"v"), now=1
            )
            await forget_etag(records, store.pk, key)
        head = await records.head(store.pk, "a")
        assert head is not None
        assert head.etag is None
        await records.fill_etag(store.pk, "a", "filled")
        head = await records.head(store.pk, "a")
        assert head is not None
        assert head.etag == "filled"
        # A write between the read and the fill has set its own: the fill leaves it.
        await records.write(store.pk, "b", content_type="t", content_encoding=None, body=Body(b"w"), now=2)
        await records.fill_etag(store.pk, "b", "stale")
        head = await records.head(store.pk, "b")
        assert head is not None
        assert head.etag == hashlib.sha256(b"w").hexdigest()

    run(work)


@pytest.fixture(params=COMBOS)
def app(
    request: pytest.FixtureRequest, backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from apps_on(str(request.param), backends, tmp_path_factory)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_a_record_written_before_etags_gets_one_on_first_read(app: Server, size: int) -> None:
    assert app.app is not None
    storage = app.app.app.services.storage
    records = storage.records
    with app.client() as http:
        store_id = new_store(http)
        body = secrets.token_bytes(size)
        for key in ("read", "head", "write"):
            put(http, url(store_id, key), body)
        store = app.app.run(storage.stores.by_id(store_id))
        assert store is not None
        for key in ("read", "head", "write"):
            app.app.run(forget_etag(records, store.pk, key))
        assert http.get(url(store_id, "read")).headers["etag"] == tag(body)
        assert http.head(url(store_id, "head")).headers["etag"] == tag(body)
        # A conditional write compares with the tag the body has, though none was stored.
        assert_412(put(http, url(store_id, "write"), b"new", **{"if-match": '"stale"'}))
        assert put(http, url(store_id, "write"), b"new", **{"if-match": tag(body)}).status_code == 201
        for key in ("read", "head"):
            head = app.app.run(records.head(store.pk, key))
            assert head is not None
            assert head.etag == hashlib.sha256(body).hexdigest()  # stored: later reads find it in the row
