"""Rights that stores' owners gave other users."""

from __future__ import annotations

import asyncpg

from satchel.errors import NotFound
from satchel.storage.postgres.db import Database
from satchel.storage.rows import Grant, GrantRow


class PostgresGrants:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, store_pk: int, user_id: str) -> Grant | None:
        access = await self.db.fetchval(
            "SELECT access FROM grants WHERE store_pk = $1 AND user_id = $2", store_pk, user_id
        )
        return Grant(access) if access is not None else None

    async def set(self, store_pk: int, user_id: str, access: Grant | None, now: int) -> None:
        if access is None:
            await self.db.execute(
                "DELETE FROM grants WHERE store_pk = $1 AND user_id = $2", store_pk, user_id
            )
            return
        try:
            await self.db.execute(
                "INSERT INTO grants (store_pk, user_id, access, created_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (store_pk, user_id) DO UPDATE SET access = excluded.access",
                store_pk, user_id, str(access), now,
            )  # fmt: skip
        except asyncpg.ForeignKeyViolationError as exc:  # deleted since the caller looked it up
            raise NotFound("Store or user was not found.") from exc

    async def of_store(self, store_pk: int) -> list[GrantRow]:
        rows = await self.db.fetch(
            "SELECT g.user_id, u.username, g.access, g.created_at"
            " FROM grants g JOIN users u ON u.id = g.user_id WHERE g.store_pk = $1 ORDER BY u.username",
            store_pk,
        )
        return [GrantRow.from_row(row) for row in rows]
