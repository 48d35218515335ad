"""The hot path's caches above the engines: bounded, right, and dropped on every published change."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from satchel.service import lookups as lookups_module
from satchel.service.lookups import Lookups
from satchel.settings import Settings
from satchel.storage import GeneralAccess, Grant, NewStore
from satchel.storage.factory import build_storage


def test_caches_stay_bounded_and_right(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading many stores, tokens and grants keeps each cache under its cap, and lookups stay right."""
    monkeypatch.setattr(lookups_module, "CACHE_MAX", 5)

    async def run() -> None:
        storage = build_storage(Settings(data_dir=tmp_path), housekeeping=False)
        await storage.open()
        lookups = Lookups(storage)
        try:
            await storage.users.create("u", "admin", 0, default_general_access=GeneralAccess.RESTRICTED)
            await storage.users.create("v", "other", 0, default_general_access=GeneralAccess.RESTRICTED)
            stores = []
            for i in range(12):
                store, _ = await storage.stores.create(
                    NewStore(f"s{i}", "u", f"n{i}", GeneralAccess.RESTRICTED, "x", None, 0)
                )
                stores.append(store)
                await storage.users.add_token("u", f"hash{i}", 0)
            for _ in range(2):  # twice: the second round reads through a cache that has started over
                for i, store in enumerate(stores):
                    found = await lookups.store_by_id(store.id)
                    assert found is not None
                    assert found.name == f"n{i}"
                    user = await lookups.user_by_token_hash(f"hash{i}")
                    assert user is not None
                    assert user.id == "u"
                    assert await lookups.grant(store.pk, "v") is None
                    assert len(lookups._stores_by_id) <= 5
                    assert len(lookups._users_by_token) <= 5
                    assert len(lookups._grants) <= 5
        finally:
            await storage.close()

    asyncio.run(run())


def test_a_change_made_elsewhere_reaches_the_cache(tmp_path: Path) -> None:
    """Another process on the same data (the CLI, another worker) changes a grant and revokes a token."""

    async def run() -> None:
        here = build_storage(Settings(data_dir=tmp_path), housekeeping=False)
        there = build_storage(Settings(data_dir=tmp_path), housekeeping=False)
        await here.open()
        await there.open()
        lookups = Lookups(here)
        elsewhere = Lookups(there)
        try:
            await here.users.create("u", "owner", 0, default_general_access=GeneralAccess.RESTRICTED)
            await here.users.create("v", "guest", 0, default_general_access=GeneralAccess.RESTRICTED)
            await here.users.add_token("v", "guest-token", 0)
            store, _ = await here.stores.create(
                NewStore("s", "u", "n", GeneralAccess.RESTRICTED, "x", None, 0)
            )
            assert await lookups.grant(store.pk, "v") is None
            assert await lookups.user_by_token_hash("guest-token") is not None
            await there.grants.set(store.pk, "v", Grant.READ, 1)
            await there.users.delete_token("guest-token")
            # Unpublished, the cache still answers as before: the feed is what keeps it right.
            assert await lookups.grant(store.pk, "v") is None
            await elsewhere.changed()
            assert await lookups.grant(store.pk, "v") is Grant.READ
            assert await lookups.user_by_token_hash("guest-token") is None
        finally:
            await here.close()
            await there.close()

    asyncio.run(run())
