"""The storage seam's contract: what every engine combination does, called in-process with no server.

One suite, parametrised over sqlite+files, postgres+files and postgres+s3: this is the definition of an
engine. Engine-specific behaviour (SQLite's writer and WAL, PostgreSQL's index use) has its own tests.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from satchel.clock import now_ms
from satchel.errors import Conflict, NotFound, TooLarge
from satchel.storage import (
    GeneralAccess,
    Grant,
    NewStore,
    Ownership,
    Storage,
    StorageKind,
    StoreRow,
    StoreUsage,
    pairing,
)
from satchel.storage.blobs.base import MARK_NAME
from satchel.storage.blobs.files import FileBlobs
from satchel.storage.factory import build_storage
from satchel.storage.housekeeping import BlobHousekeeping
from satchel.storage.pairing import blobs_found
from satchel.storage.postgres import records as postgres_records
from satchel.storage.rows import DeploymentMark, NewRequest, RequestRow
from satchel.storage.sqlite import records as sqlite_records
from tests.harness.backends import COMBOS, Backends
from tests.harness.engine import Body, Run, runner

INLINE_MAX = 1024


@pytest.fixture(params=COMBOS)
def combo(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_of(backends: Backends, combo: str, tmp_path: Path) -> Callable[[], Any]:
    """The settings of one fresh deployment; called again, the same deployment (a second process)."""
    made = backends.settings(
        combo, tmp_path / "data", inline_max_bytes=INLINE_MAX, blob_grace_seconds=0, max_record_bytes=1 << 24
    )
    return lambda: made


@pytest.fixture
def run(settings_of: Callable[[], Any]) -> Run:
    """Run work(storage) on an open storage inside one event loop, and close it after."""
    return runner(settings_of)


async def _user(storage: Storage, name: str = "alice") -> str:
    user = await storage.users.create(f"id-{name}", name, 1, default_general_access=GeneralAccess.RESTRICTED)
    return user.id


async def _store(storage: Storage, user_id: str, name: str | None = "s", now: int = 1) -> StoreRow:
    store, _ = await storage.stores.create(
        NewStore(
            f"store-{secrets.token_hex(6)}", user_id, name, GeneralAccess.FOLLOW_USER_SETTING, "k", None, now
        )
    )
    return store


async def _read(storage: Storage, store: StoreRow, key: str) -> bytes | None:
    record = await storage.records.read(store.pk, key)
    if record is None:
        return None
    return b"".join([chunk async for chunk in record.stream()])


# --- users, tokens and grants


def test_users_and_tokens(run: Run) -> None:
    async def work(storage: Storage) -> None:
        uid = await _user(storage)
        with pytest.raises(Conflict):
            await storage.users.create("other", "alice", 2, default_general_access=GeneralAccess.RESTRICTED)
        assert (await storage.users.by_name("alice")).id == uid  # type: ignore[union-attr]
        assert (await storage.users.by_id(uid)).username == "alice"  # type: ignore[union-attr]
        assert await storage.users.by_name("nobody") is None
        await storage.users.add_token(uid, "h1", 5)
        await storage.users.add_token(uid, "h1", 6)  # the same token again changes nothing
        await storage.users.add_token(uid, "h2", 7)
        assert [t.hash for t in await storage.users.tokens(uid)] == ["h1", "h2"]
        assert (await storage.users.by_token_hash("h2")).id == uid  # type: ignore[union-attr]
        assert await storage.users.delete_token("h1")
        assert not await storage.users.delete_token("h1")
        assert await storage.users.by_token_hash("h1") is None
        await storage.users.set_default_general_access(uid, GeneralAccess.ANYONE_WITH_ID_CAN_READ)
        user = await storage.users.by_id(uid)
        assert user is not None
        assert user.default_general_access is GeneralAccess.ANYONE_WITH_ID_CAN_READ
        assert [u.username for u in await storage.users.all()] == ["alice"]

    run(work)


def test_grants(run: Run) -> None:
    async def work(storage: Storage) -> None:
        owner, bob = await _user(storage), await _user(storage, "bob")
        store = await _store(storage, owner)
        assert await storage.grants.get(store.pk, bob) is None
        await storage.grants.set(store.pk, bob, Grant.READ, 3)
        assert await storage.grants.get(store.pk, bob) is Grant.READ
        await storage.grants.set(store.pk, bob, Grant.WRITE, 4)
        rows = await storage.grants.of_store(store.pk)
        assert [(g.username, g.access) for g in rows] == [("bob", Grant.WRITE)]
        await storage.grants.set(store.pk, bob, None, 5)
        assert await storage.grants.get(store.pk, bob) is None
        assert await storage.grants.of_store(store.pk) == []

    run(work)


# --- stores


def test_store_create_is_get_or_create_by_name(run: Run) -> None:
    async def work(storage: Storage) -> None:
        uid = await _user(storage)
        first, created = await storage.stores.create(
            NewStore("a1", uid, "same", GeneralAccess.RESTRICTED, "k", '{"x": 1}', 10)
        )
        again, created_again = await storage.stores.create(
            NewStore("a2", uid, "same", GeneralAccess.RESTRICTED, "k", None, 11)
        )
        assert created
        assert not created_again
        assert again.id == first.id == "a1"
        assert first.schema == '{"x": 1}'
        assert first.username == "alice"
        assert first.owner_default_access is GeneralAccess.RESTRICTED
        unnamed1 = await _store(storage, uid, None, now=12)
        unnamed2 = await _store(storage, uid, None, now=13)
        assert unnamed1.id != unnamed2.id
        assert (await storage.stores.by_id("a1")).name == "same"  # type: ignore[union-attr]
        assert (await storage.stores.by_name(uid, StorageKind.KEY_VALUE_STORE, "same")).id == "a1"  # type: ignore[union-attr]
        assert await storage.stores.by_id("missing") is None

    run(work)


def test_store_rename_access_and_conflict(run: Run) -> None:
    async def work(storage: Storage) -> None:
        uid = await _user(storage)
        one, two = await _store(storage, uid, "one"), await _store(storage, uid, "two")
        renamed = await storage.stores.update(
            one.pk, name="uno", general_access=GeneralAccess.ANYONE_WITH_NAME_CAN_READ, title="T", now=50
        )
        assert (renamed.name, renamed.title, renamed.modified_at) == ("uno", "T", 50)
        assert renamed.general_access is GeneralAccess.ANYONE_WITH_NAME_CAN_READ
        with pytest.raises(Conflict):
            await storage.stores.update(
                two.pk, name="uno", general_access=GeneralAccess.RESTRICTED, title=None, now=51
            )
        unnamed = await storage.stores.update(
            two.pk, name=None, general_access=GeneralAccess.RESTRICTED, title=None, now=52
        )
        assert unnamed.name is None
        with pytest.raises(NotFound):
            await storage.stores.update(
                999_999, name=None, general_access=GeneralAccess.RESTRICTED, title=None, now=53
            )

    run(work)


def test_store_pages_by_ownership(run: Run) -> None:
    async def work(storage: Storage) -> None:
        alice, bob = await _user(storage), await _user(storage, "bob")
        mine = [await _store(storage, alice, f"a{i}", now=i) for i in range(3)]
        hidden = await _store(storage, alice, None, now=5)
        theirs = await _store(storage, bob, "b", now=6)
        await storage.grants.set(theirs.pk, alice, Grant.READ, 7)

        async def ids(**kw: Any) -> tuple[int, list[tuple[str, Grant | None]]]:
            args: dict[str, Any] = {
                "ownership": Ownership.ALL, "unnamed": False, "offset": 0, "limit": 100, "desc": False,
            } | kw  # fmt: skip
            total, rows = await storage.stores.page(alice, StorageKind.KEY_VALUE_STORE, **args)
            return total, [(row.id, grant) for row, grant in rows]

        named = [(s.id, None) for s in mine]
        assert await ids() == (4, [*named, (theirs.id, Grant.READ)])
        assert await ids(ownership=Ownership.OWNED) == (3, named)
        assert await ids(ownership=Ownership.SHARED) == (1, [(theirs.id, Grant.READ)])
        total, rows = await ids(unnamed=True, ownership=Ownership.OWNED)
        assert total == 4
        assert [r[0] for r in rows] == [*[s.id for s in mine], hidden.id]
        assert await ids(ownership=Ownership.OWNED, desc=True, offset=1, limit=1) == (3, [(mine[1].id, None)])

    run(work)


def test_store_stats_and_usage(run: Run) -> None:
    async def work(storage: Storage) -> None:
        store = await _store(storage, await _user(storage))
        await storage.records.write(
            store.pk, "a", content_type="t", content_encoding=None, body=Body(b"x" * 10), now=20
        )
        await storage.records.write(
            store.pk, "b", content_type="t", content_encoding=None, body=Body(b"y" * 5000), now=21
        )
        await storage.records.write(
            store.pk, "a", content_type="t", content_encoding=None, body=Body(b"z" * 3), now=22
        )
        await storage.records.delete(store.pk, "b", now=23)
        await storage.records.delete(store.pk, "missing", now=24)
        await storage.stores.add_usage({store.pk: StoreUsage(reads=4, lists=2, accessed_at=30)})
        await storage.stores.add_usage({store.pk: StoreUsage(reads=1, lists=0, accessed_at=25)})
        row = await storage.stores.by_id(store.id)
        assert row is not None
        stats = row.stats
        assert (stats.write_count, stats.delete_count, stats.read_count, stats.list_count) == (3, 1, 5, 2)
        assert stats.storage_bytes == 3
        assert (row.modified_at, row.accessed_at) == (23, 30)

    run(work)


def test_retention_deletes_only_what_is_still_unused(run: Run) -> None:
    async def work(storage: Storage) -> None:
        uid = await _user(storage)
        old = await _store(storage, uid, None, now=100)
        used = await _store(storage, uid, None, now=100)
        named = await _store(storage, uid, "kept", now=100)
        await storage.records.write(
            old.pk, "big", content_type="t", content_encoding=None, body=Body(b"b" * 5000), now=100
        )
        assert sorted(await storage.stores.expired(200, 10)) == sorted([old.pk, used.pk])
        # Written after the sweeper chose it: kept.
        await storage.records.write(
            used.pk, "k", content_type="t", content_encoding=None, body=Body(b"v"), now=300
        )
        assert not await storage.stores.delete(used.pk, unused_since=200)
        assert not await storage.stores.delete(named.pk, unused_since=200)
        assert await storage.stores.delete(old.pk, unused_since=200)
        assert not await storage.stores.delete(old.pk, unused_since=200)  # a second sweeper finds it gone
        assert await storage.stores.by_id(old.id) is None
        assert await storage.stores.by_id(used.id) is not None
        assert len(await storage.records.dead_blobs(now_ms() + 1, 10)) == 1

    run(work)


# --- records


def test_records_inline_and_blob_round_trip(run: Run) -> None:
    async def work(storage: Storage) -> None:
        store = await _store(storage, await _user(storage))
        bodies = {"empty": b"", "small": b"s" * INLINE_MAX, "large": bytes(range(256)) * 2000}
        for key, data in bodies.items():
            written = await storage.records.write(
                store.pk, key, content_type="a/b", content_encoding="gzip", body=Body(data), now=40
            )
            assert (written.size, written.raw_size, written.content_encoding) == (
                len(data),
                len(data),
                "gzip",
            )
        for key, data in bodies.items():
            assert await _read(storage, store, key) == data
            head = await storage.records.head(store.pk, key)
            assert head is not None
            assert (head.key, head.content_type, head.size, head.modified_at) == (key, "a/b", len(data), 40)
        large = await storage.records.read(store.pk, "large")
        small = await storage.records.read(store.pk, "small")
        assert large is not None
        assert large.inline is None
        assert small is not None
        assert small.inline == bodies["small"]
        assert await storage.records.read(store.pk, "missing") is None
        with pytest.raises(NotFound):
            await storage.records.write(
                999_999, "k", content_type="t", content_encoding=None, body=Body(b"x" * 5000), now=1
            )

    run(work)


def test_replaced_and_deleted_blobs_stay_readable_until_purged(run: Run) -> None:
    async def work(storage: Storage) -> None:
        store = await _store(storage, await _user(storage))
        first, second = b"1" * 5000, b"2" * 6000
        await storage.records.write(
            store.pk, "k", content_type="t", content_encoding=None, body=Body(first), now=1
        )
        held = await storage.records.read(store.pk, "k")
        await storage.records.write(
            store.pk, "k", content_type="t", content_encoding=None, body=Body(second), now=2
        )
        assert await _read(storage, store, "k") == second
        assert held is not None
        assert b"".join([c async for c in held.stream()]) == first  # a reader in flight finishes
        await storage.records.delete(store.pk, "k", now=3)
        assert len(await storage.records.dead_blobs(now_ms() + 1, 10)) == 2
        assert await BlobHousekeeping(storage.records, storage.blobs, grace_ms=0).purge() == 2
        assert await storage.records.dead_blobs(now_ms() + 1, 10) == []

    run(work)


def test_a_blob_store_is_checked_against_the_blobs_records_name(run: Run) -> None:
    async def work(storage: Storage) -> None:
        assert await blobs_found(storage.records, storage.blobs) == (0, 0)  # nothing to check by yet
        store = await _store(storage, await _user(storage))
        for key, size in (("small", 10), ("large", 5000)):
            await storage.records.write(
                store.pk, key, content_type="t", content_encoding=None, body=Body(b"x" * size), now=1
            )
        assert await blobs_found(storage.records, storage.blobs) == (1, 1)
        # A blob store without it (another bucket, or files on another machine) holds none of them.
        await storage.blobs.delete(await storage.records.some_blobs(10))
        assert await blobs_found(storage.records, storage.blobs) == (1, 0)

    run(work)


def test_nodes_claiming_a_mark_together_keep_the_first(run: Run) -> None:
    async def work(storage: Storage) -> None:
        assert await storage.records.mark() is None
        offered = [secrets.token_hex(16) for _ in range(6)]
        kept = await asyncio.gather(*(storage.records.claim_mark(mark, 1) for mark in offered))
        assert {found.mark for found in kept} == {kept[0].mark}
        assert kept[0].mark in offered
        assert not kept[0].paired
        await storage.records.paired(2)
        assert await storage.records.mark() == DeploymentMark(kept[0].mark, paired=True)
        assert await storage.records.claim_mark(secrets.token_hex(16), 3) == DeploymentMark(
            kept[0].mark, True
        )

    run(work)


DESCRIBED = pairing.Described("the blob store here", "the mark here")


def test_a_blob_store_is_paired_with_its_database_by_a_mark(run: Run, tmp_path: Path) -> None:
    """The first check pairs the two; another blob store is refused before any large body exists, where the
    bodies give nothing to look for; a copy of the paired one holding its bodies takes the mark."""

    async def work(storage: Storage) -> None:
        await pairing.check(storage.records, storage.blobs, DESCRIBED, pair=True)
        kept = await storage.records.mark()
        assert kept is not None
        assert kept.paired
        assert await storage.blobs.mark() == kept.mark
        await pairing.check(storage.records, storage.blobs, DESCRIBED, pair=False)  # and again: the same

        other = FileBlobs(tmp_path / "other" / "blobs", fsync=False)
        await other.open()
        try:
            for pair in (True, False):
                with pytest.raises(
                    pairing.Unpaired, match=f"lacks this database's deployment mark {kept.mark}"
                ):
                    await pairing.check(storage.records, other, DESCRIBED, pair=pair)
            assert await other.mark() is None
            await other.write_mark("f" * 32)
            with pytest.raises(pairing.Unpaired, match=f"is {'f' * 32}, and this database's is {kept.mark}"):
                await pairing.check(storage.records, other, DESCRIBED, pair=True)
            assert await other.mark() == "f" * 32  # another deployment's mark is never written over
            (tmp_path / "other" / "blobs" / MARK_NAME).unlink()

            # Its bodies copied over (a bucket restored or moved), the other one is the same blob store.
            store = await _store(storage, await _user(storage))
            await storage.records.write(
                store.pk, "large", content_type="t", content_encoding=None, body=Body(b"x" * 5000), now=1
            )
            (name,) = await storage.records.some_blobs(10)
            await other.put(name, storage.blobs.read(name))
            await pairing.check(storage.records, other, DESCRIBED, pair=False)
            assert await other.mark() is None  # a command that only reads writes nothing
            await pairing.check(storage.records, other, DESCRIBED, pair=True)
            assert await other.mark() == kept.mark
        finally:
            await other.close()

    run(work)


def test_a_node_on_another_blob_store_waits_for_the_pairing_under_way(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that finds a mark another node has just written, not yet noted paired, waits for the note
    before it looks in its own blob store, so one given another blob store is refused even then."""
    monkeypatch.setattr(pairing, "PAIRING_WAIT_SECONDS", 2.0)

    async def work(storage: Storage) -> None:
        other = FileBlobs(tmp_path / "other" / "blobs", fsync=False)
        await other.open()
        try:
            kept = await storage.records.claim_mark(secrets.token_hex(16), 1)  # the first node, pairing
            waiting = asyncio.create_task(pairing.check(storage.records, other, DESCRIBED, pair=True))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            await storage.blobs.write_mark(kept.mark)
            await storage.records.paired(2)
            with pytest.raises(pairing.Unpaired, match="lacks this database's deployment mark"):
                await waiting
            assert await other.mark() is None
        finally:
            await other.close()

    run(work)


def test_a_pairing_left_half_done_is_made_by_the_next_node(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node that wrote the database's mark and died before its blob store held it: the next node waits
    for the note that never comes, then makes the pair itself."""
    monkeypatch.setattr(pairing, "PAIRING_WAIT_SECONDS", 1.0)

    async def work(storage: Storage) -> None:
        kept = await storage.records.claim_mark(secrets.token_hex(16), 1)  # and died before it wrote more
        started = time.monotonic()
        await pairing.check(storage.records, storage.blobs, DESCRIBED, pair=True)
        assert time.monotonic() - started >= pairing.PAIRING_WAIT_SECONDS
        assert await storage.records.mark() == DeploymentMark(kept.mark, paired=True)
        assert await storage.blobs.mark() == kept.mark

    run(work)


def test_an_upload_cut_short_leaves_nothing_visible(run: Run) -> None:
    async def work(storage: Storage) -> None:
        store = await _store(storage, await _user(storage))
        with pytest.raises(ConnectionResetError):
            await storage.records.write(
                store.pk, "k", content_type="t", content_encoding=None,
                body=Body(b"x" * 300_000, fail_after=100_000), now=1,
            )  # fmt: skip
        with pytest.raises(TooLarge):
            await storage.records.write(
                store.pk,
                "k",
                content_type="t",
                content_encoding=None,
                body=Body(b"x" * ((1 << 24) + 1)),
                now=1,
            )
        assert await storage.records.read(store.pk, "k") is None
        row = await storage.stores.by_id(store.id)
        assert row is not None
        assert row.stats.storage_bytes == 0
        # The uploads that began were dropped at once: nothing is left for housekeeping.
        assert await storage.records.abandoned_uploads(now_ms() + 1, 10) == []

    run(work)


def test_keys_in_utf8_binary_order_with_prefix_and_start(run: Run) -> None:
    async def work(storage: Storage) -> None:
        store = await _store(storage, await _user(storage))
        keys = ["b", "B", "a", "A", "_", "-", "(", ")", "!", "'", ".x", "~", "a1", "a(", "ab", "Z9", "0"]
        keys = [k for k in keys if k != "~"]
        for key in keys:
            await storage.records.write(
                store.pk, key, content_type="t", content_encoding=None, body=Body(key.encode()), now=1
            )
        order = sorted(keys, key=lambda k: k.encode())
        listed = await storage.records.keys(store.pk, prefix="", exclusive_start_key=None, limit=100)
        assert [i.key for i in listed] == order
        assert [i.size for i in listed] == [len(k) for k in order]
        page = await storage.records.keys(store.pk, prefix="", exclusive_start_key="A", limit=3)
        assert [i.key for i in page] == order[order.index("A") + 1 :][:3]
        with_prefix = await storage.records.keys(store.pk, prefix="a", exclusive_start_key=None, limit=100)
        assert [i.key for i in with_prefix] == ["a", "a(", "a1", "ab"]
        after = await storage.records.keys(store.pk, prefix="a", exclusive_start_key="a(", limit=100)
        assert [i.key for i in after] == ["a1", "ab"]
        before = await storage.records.keys(store.pk, prefix="a", exclusive_start_key="0", limit=1)
        assert [i.key for i in before] == ["a"]

    run(work)


def test_iterate_walks_every_record_in_key_order(run: Run) -> None:
    async def work(storage: Storage) -> None:
        store = await _store(storage, await _user(storage))
        keys = [f"p{i:04d}" for i in range(230)] + ["q"]
        for i, key in enumerate(keys):
            data = key.encode() * (400 if i % 50 == 0 else 1)  # some in blobs
            await storage.records.write(
                store.pk, key, content_type="t", content_encoding=None, body=Body(data), now=1
            )
        seen = []
        async for record in storage.records.iterate(store.pk, prefix="p"):
            data = b"".join([c async for c in record.stream()])
            assert data.startswith(record.head.key.encode())
            seen.append(record.head.key)
        assert seen == keys[:-1]

    run(work)


def test_iterate_holds_a_page_of_inline_bodies_up_to_its_byte_bound(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page ends before the record at which the inline bodies reach ITERATE_BYTES: a slow reader of a ZIP
    holds no more. Seen from outside by what a page read ahead: a record changed while the first is being
    read shows its old value only if it was on that page."""
    for engine in (sqlite_records, postgres_records):
        monkeypatch.setattr(engine, "ITERATE_BYTES", 2500)

    async def work(storage: Storage) -> None:
        store = await _store(storage, await _user(storage))
        keys = [f"k{i:02d}" for i in range(12)]

        async def put(key: str, fill: bytes) -> None:
            body = Body(fill * 1000)  # inline (INLINE_MAX is 1024): 3 to a page of 2,500 bytes
            await storage.records.write(
                store.pk, key, content_type="t", content_encoding=None, body=body, now=1
            )

        for key in keys:
            await put(key, b"a")
        seen: dict[str, bytes] = {}
        async for record in storage.records.iterate(store.pk, prefix=""):
            if not seen:
                await put("k02", b"b")  # on the first page: read already
                await put("k03", b"b")  # the second page's first: not read yet
            seen[record.head.key] = b"".join([c async for c in record.stream()])
        assert list(seen) == keys
        assert seen["k02"] == b"a" * 1000
        assert seen["k03"] == b"b" * 1000

    run(work)


def test_concurrent_writes_of_one_key_end_in_one_whole_value(run: Run) -> None:
    async def work(storage: Storage) -> None:
        store = await _store(storage, await _user(storage))
        values = [bytes([65 + i]) * (100 if i % 2 else 3000 + i) for i in range(16)]

        async def put(data: bytes) -> None:
            await storage.records.write(
                store.pk,
                "k",
                content_type=f"t/{data[:1].decode()}",
                content_encoding=None,
                body=Body(data),
                now=1,
            )

        await asyncio.gather(*(put(v) for v in values))
        record = await storage.records.read(store.pk, "k")
        assert record is not None
        data = b"".join([c async for c in record.stream()])
        assert data in values
        assert record.head.content_type == f"t/{data[:1].decode()}"
        assert record.head.size == len(data)
        row = await storage.stores.by_id(store.id)
        assert row is not None
        assert row.stats.storage_bytes == len(data)
        assert len(await storage.records.dead_blobs(now_ms() + 1, 100)) == sum(
            len(v) > INLINE_MAX for v in values
        ) - (len(data) > INLINE_MAX)

    run(work)


def test_deleting_a_store_takes_its_records_and_grants(run: Run) -> None:
    async def work(storage: Storage) -> None:
        owner, bob = await _user(storage), await _user(storage, "bob")
        store = await _store(storage, owner)
        await storage.grants.set(store.pk, bob, Grant.WRITE, 1)
        for key, size in (("a", 10), ("b", 5000)):
            await storage.records.write(
                store.pk, key, content_type="t", content_encoding=None, body=Body(b"x" * size), now=1
            )
        assert await storage.stores.delete(store.pk)
        assert await storage.stores.by_id(store.id) is None
        assert await storage.records.read(store.pk, "a") is None
        assert await storage.grants.get(store.pk, bob) is None
        assert len(await storage.records.dead_blobs(now_ms() + 1, 10)) == 1

    run(work)


# --- the change feed


def test_a_change_published_by_one_process_reaches_another(settings_of: Callable[[], Any]) -> None:
    async def work() -> None:
        one = build_storage(settings_of(), housekeeping=False)
        two = build_storage(settings_of(), housekeeping=False)
        await one.open()
        await two.open()
        try:
            before = two.feed.stamp()
            assert two.feed.stamp() == before  # steady while nothing changes
            await one.feed.publish()
            for _ in range(100):
                if two.feed.stamp() != before:
                    break
                await asyncio.sleep(0.02)
            assert two.feed.stamp() != before
        finally:
            await one.close()
            await two.close()

    asyncio.run(work())


# --- Console sessions


def test_sessions_live_until_they_expire_or_are_deleted(run: Run) -> None:
    async def work(storage: Storage) -> None:
        uid = await _user(storage)
        await storage.users.add_token(uid, "tok", 1)
        assert await storage.sessions.create("s1", "tok", 10, 100)
        assert await storage.sessions.create("s2", "tok", 10, 50)
        row = await storage.sessions.get("s1", 99)
        assert row is not None
        assert (row.hash, row.token_hash, row.created_at, row.expires_at) == ("s1", "tok", 10, 100)
        assert await storage.sessions.get("s1", 100) is None  # over at its expiry, row or no row
        assert await storage.sessions.get("nobody", 11) is None
        # Only a token that is held makes a session.
        assert not await storage.sessions.create("s3", "no-such-token", 10, 100)
        assert await storage.sessions.get("s3", 11) is None
        # Signing out deletes the row.
        assert await storage.sessions.delete("s1")
        assert not await storage.sessions.delete("s1")
        assert await storage.sessions.get("s1", 11) is None
        # Housekeeping takes the expired ones, a batch at a time, and nothing else.
        for n in range(4, 9):
            assert await storage.sessions.create(f"s{n}", "tok", 10, 40 + n)
        assert await storage.sessions.create("live", "tok", 10, 1000)
        assert await storage.sessions.delete_expired(60, 4) == 4
        assert await storage.sessions.delete_expired(60, 4) == 2
        assert await storage.sessions.delete_expired(60, 4) == 0
        assert await storage.sessions.get("live", 60) is not None

    run(work)


def test_deleting_a_token_ends_its_sessions_for_good(run: Run) -> None:
    async def work(storage: Storage) -> None:
        uid = await _user(storage)
        await storage.users.add_token(uid, "a", 1)
        await storage.users.add_token(uid, "b", 1)
        for name, token in (("a1", "a"), ("a2", "a"), ("b1", "b")):
            assert await storage.sessions.create(name, token, 5, 1000)
        assert await storage.users.delete_token("a")
        assert await storage.sessions.get("a1", 6) is None
        assert await storage.sessions.get("a2", 6) is None
        assert await storage.sessions.get("b1", 6) is not None
        # The same token given again (the admin's, set in the environment) does not bring them back: the rows
        # went with the token.
        await storage.users.add_token(uid, "a", 7)
        assert await storage.sessions.get("a1", 8) is None
        assert not await storage.sessions.delete("a2")
        assert await storage.sessions.delete_expired(2000, 100) == 1  # b1 alone is left

    run(work)


def test_a_session_made_in_one_process_is_known_and_ended_in_another(settings_of: Callable[[], Any]) -> None:
    async def work() -> None:
        one = build_storage(settings_of(), housekeeping=False)
        two = build_storage(settings_of(), housekeeping=False)
        await one.open()
        await two.open()
        try:
            uid = await _user(one)
            await one.users.add_token(uid, "tok", 1)
            assert await one.sessions.create("s", "tok", 5, now_ms() + 60_000)
            assert await two.sessions.get("s", now_ms()) is not None
            assert await two.sessions.delete("s")
            assert await one.sessions.get("s", now_ms()) is None
            assert await one.sessions.create("t", "tok", 5, now_ms() + 60_000)
            assert await two.users.delete_token("tok")
            assert await one.sessions.get("t", now_ms()) is None
        finally:
            await one.close()
            await two.close()

    asyncio.run(work())


# --- the URL signing secret


def test_a_store_signing_secret_is_replaced_in_place(run: Run) -> None:
    async def work(storage: Storage) -> None:
        uid = await _user(storage)
        store = await _store(storage, uid, "s", now=1)
        other = await _store(storage, uid, "t", now=1)
        rotated = await storage.stores.set_url_signing_secret_key(store.pk, "new-secret", now=7)
        assert rotated.url_signing_secret_key == "new-secret"
        assert (rotated.id, rotated.name, rotated.username, rotated.general_access) == (
            store.id, store.name, store.username, store.general_access,
        )  # fmt: skip
        assert rotated.modified_at == 7
        again = await storage.stores.by_id(store.id)
        assert again is not None
        assert again.url_signing_secret_key == "new-secret"
        untouched = await storage.stores.by_id(other.id)
        assert untouched is not None
        assert untouched.url_signing_secret_key == "k"
        await storage.stores.delete(store.pk)
        with pytest.raises(NotFound):
            await storage.stores.set_url_signing_secret_key(store.pk, "newer", now=8)

    run(work)


def test_a_store_page_leaves_schemas_out(run: Run) -> None:
    async def work(storage: Storage) -> None:
        uid = await _user(storage)
        new = NewStore("store-with-schema", uid, "s", GeneralAccess.RESTRICTED, "k", '{"a": 1}', 1)
        store, _ = await storage.stores.create(new)
        assert store.schema == '{"a": 1}'
        _, rows = await storage.stores.page(
            uid, StorageKind.KEY_VALUE_STORE, ownership=Ownership.ALL, unnamed=True, offset=0, limit=10,
            desc=False,
        )  # fmt: skip
        assert [(row.id, row.schema) for row, _ in rows] == [(store.id, None)]
        found = await storage.stores.by_id(store.id)
        assert found is not None
        assert found.schema == '{"a": 1}'

    run(work)


def test_each_kind_has_its_own_names_and_a_delete_takes_its_rows(run: Run) -> None:
    """A dataset and a request queue may share a key-value store's name; listings keep to one kind."""

    async def work(storage: Storage) -> None:
        uid = await _user(storage)
        made = {}
        for kind in StorageKind:
            new = NewStore(f"id-{kind}", uid, "same", GeneralAccess.RESTRICTED, "k", None, 1, kind=kind)
            made[kind], created = await storage.stores.create(new)
            assert created
            assert made[kind].kind is kind
        for kind in StorageKind:
            found = await storage.stores.by_name(uid, kind, "same")
            assert found is not None
            assert (found.id, found.kind) == (f"id-{kind}", kind)
            total, rows = await storage.stores.page(
                uid, kind, ownership=Ownership.ALL, unnamed=True, offset=0, limit=10, desc=False
            )
            assert (total, [row.id for row, _ in rows]) == (1, [f"id-{kind}"])
        assert await storage.stores.delete(made[StorageKind.DATASET].pk)
        assert await storage.stores.by_name(uid, StorageKind.DATASET, "same") is None
        assert await storage.stores.by_name(uid, StorageKind.REQUEST_QUEUE, "same") is not None

    run(work)


def test_request_pages_stop_at_their_bytes(run: Run) -> None:
    """A list page, the head and a locked head each stop before the request at which the bodies before it
    reach max_bytes (one request at least), in their own order; a lock takes only what it returns."""

    async def work(storage: Storage) -> None:
        uid = await _user(storage)
        new = NewStore(
            "q-bytes", uid, "q", GeneralAccess.RESTRICTED, "k", None, 1, kind=StorageKind.REQUEST_QUEUE
        )
        queue, _ = await storage.stores.create(new)
        sizes = [300, 50, 200, 10]  # bodies of about these sizes, added in this order
        requests = [NewRequest(f"r{n}", b'{"u":"%s"}' % (b"x" * size), None) for n, size in enumerate(sizes)]
        await storage.queues.add(queue.pk, requests, forefront=False, client_key="", now=10)
        lengths = [len(r.body) for r in requests]  # 308, 58, 208, 18

        def ids(rows: list[RequestRow]) -> list[str]:
            return [row.id for row in rows]

        pages = storage.queues.page
        assert ids(
            await pages(queue.pk, after=None, limit=10, max_bytes=10**9, pending=False, locked=False, now=20)
        ) == ["r0", "r1", "r2", "r3"]
        assert ids(
            await pages(queue.pk, after=None, limit=10, max_bytes=1, pending=False, locked=False, now=20)
        ) == ["r0"]
        # Before r2 come 308 + 58 bytes: under 367 it is taken, at 366 it is not.
        budget = lengths[0] + lengths[1]
        assert ids(
            await pages(
                queue.pk, after=None, limit=10, max_bytes=budget + 1, pending=False, locked=False, now=20
            )
        ) == ["r0", "r1", "r2"]
        assert ids(
            await pages(queue.pk, after=None, limit=10, max_bytes=budget, pending=False, locked=False, now=20)
        ) == ["r0", "r1"]
        assert ids(
            await pages(queue.pk, after="r1", limit=10, max_bytes=1, pending=True, locked=False, now=20)
        ) == ["r2"]
        assert ids(await storage.queues.head(queue.pk, limit=10, max_bytes=budget, now=20)) == ["r0", "r1"]
        assert ids(await storage.queues.head(queue.pk, limit=1, max_bytes=10**9, now=20)) == ["r0"]
        locked = await storage.queues.lock_head(
            queue.pk, limit=10, max_bytes=budget, lock_ms=60_000, client_key="a", now=20
        )
        assert ids(locked.items) == ["r0", "r1"]
        # Only those two were locked: the head now starts at r2, and takes the rest.
        assert ids(await storage.queues.head(queue.pk, limit=10, max_bytes=10**9, now=21)) == ["r2", "r3"]

    run(work)
