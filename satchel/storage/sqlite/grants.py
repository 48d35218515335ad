"""Stores shared with other users, in SQLite."""

from __future__ import annotations

import sqlite3

from satchel.storage.rows import Grant, GrantRow
from satchel.storage.sqlite.db import Database


def _set_grant(conn: sqlite3.Connection, store_pk: int, user_id: str, access: Grant | None, now: int) -> None:
    if access is None:
        conn.execute("DELETE FROM grants WHERE store_pk = ? AND user_id = ?", (store_pk, user_id))
    else:
        conn.execute(
            "INSERT INTO grants (store_pk, user_id, access, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (store_pk, user_id) DO UPDATE SET access = excluded.access",
            (store_pk, user_id, access, now),
        )


class SqliteGrants:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, store_pk: int, user_id: str) -> Grant | None:
        row = self.db.one("SELECT access FROM grants WHERE store_pk = ? AND user_id = ?", (store_pk, user_id))
        return Grant(row["access"]) if row else None

    async def set(self, store_pk: int, user_id: str, access: Grant | None, now: int) -> None:
        await self.db.write(_set_grant, store_pk, user_id, access, now)

    async def of_store(self, store_pk: int) -> list[GrantRow]:
        rows = self.db.all(
            "SELECT g.user_id, u.username, g.access, g.created_at"
            " FROM grants g JOIN users u ON u.id = g.user_id WHERE g.store_pk = ? ORDER BY u.username",
            (store_pk,),
        )
        return [GrantRow.from_row(row) for row in rows]
