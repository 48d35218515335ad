"""Users and tokens in SQLite."""

from __future__ import annotations

import sqlite3

from satchel.errors import Conflict
from satchel.storage.rows import GeneralAccess, TokenRow, UserRow
from satchel.storage.sqlite.db import Database

USER_SELECT = "SELECT u.id, u.username, u.created_at, u.default_general_access FROM users u"


def _insert_user(
    conn: sqlite3.Connection, user_id: str, username: str, now: int, default_general_access: GeneralAccess
) -> None:
    try:
        conn.execute(
            "INSERT INTO users (id, username, created_at, default_general_access) VALUES (?, ?, ?, ?)",
            (user_id, username, now, default_general_access),
        )
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"A user named {username!r} already exists.") from exc


def _set_default_general_access(conn: sqlite3.Connection, user_id: str, access: GeneralAccess) -> None:
    conn.execute("UPDATE users SET default_general_access = ? WHERE id = ?", (access, user_id))


def _add_token(conn: sqlite3.Connection, user_id: str, token_hash: str, now: int, name: str | None) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO tokens (hash, user_id, created_at, name) VALUES (?, ?, ?, ?)",
        (token_hash, user_id, now, name),
    )


def _delete_token(conn: sqlite3.Connection, token_hash: str) -> bool:
    return conn.execute("DELETE FROM tokens WHERE hash = ?", (token_hash,)).rowcount > 0


class SqliteUsers:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _user(self, where: str, args: tuple[str, ...]) -> UserRow | None:
        row = self.db.one(f"{USER_SELECT} {where}", args)
        return UserRow.from_row(row) if row else None

    async def by_token_hash(self, token_hash: str) -> UserRow | None:
        return self._user("JOIN tokens t ON u.id = t.user_id WHERE t.hash = ?", (token_hash,))

    async def by_name(self, username: str) -> UserRow | None:
        return self._user("WHERE u.username = ?", (username,))

    async def by_id(self, user_id: str) -> UserRow | None:
        return self._user("WHERE u.id = ?", (user_id,))

    async def all(self) -> list[UserRow]:
        return [UserRow.from_row(r) for r in self.db.all(f"{USER_SELECT} ORDER BY u.created_at, u.username")]

    async def create(
        self, user_id: str, username: str, now: int, *, default_general_access: GeneralAccess
    ) -> UserRow:
        await self.db.write(_insert_user, user_id, username, now, default_general_access)
        return UserRow(user_id, username, now, default_general_access)

    async def set_default_general_access(self, user_id: str, access: GeneralAccess) -> None:
        await self.db.write(_set_default_general_access, user_id, access)

    async def add_token(self, user_id: str, token_hash: str, now: int, *, name: str | None = None) -> None:
        await self.db.write(_add_token, user_id, token_hash, now, name)

    async def tokens(self, user_id: str | None = None) -> list[TokenRow]:
        where, args = ("WHERE user_id = ?", (user_id,)) if user_id is not None else ("", ())
        rows = self.db.all(
            f"SELECT hash, user_id, created_at, name FROM tokens {where} ORDER BY created_at, hash",  # noqa: S608
            args,
        )
        return [TokenRow.from_row(row) for row in rows]

    async def delete_token(self, token_hash: str) -> bool:
        return await self.db.write(_delete_token, token_hash)
