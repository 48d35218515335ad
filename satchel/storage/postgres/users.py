"""Users and their tokens (kept as SHA-256 digests)."""

from __future__ import annotations

import asyncpg

from satchel.errors import Conflict, NotFound
from satchel.storage.postgres.db import Database, count, holds_nul
from satchel.storage.rows import GeneralAccess, TokenRow, UserRow

USER_SELECT = "SELECT u.id, u.username, u.created_at, u.default_general_access FROM users u"
TOKEN_SELECT = "SELECT hash, user_id, created_at, name FROM tokens"  # noqa: S105 - a query, not a secret


class PostgresUsers:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _one(self, where: str, arg: str) -> UserRow | None:
        if holds_nul(arg):
            return None
        row = await self.db.fetchrow(f"{USER_SELECT} {where}", arg)
        return UserRow.from_row(row) if row is not None else None

    async def by_token_hash(self, token_hash: str) -> UserRow | None:
        return await self._one("JOIN tokens t ON t.user_id = u.id WHERE t.hash = $1", token_hash)

    async def by_name(self, username: str) -> UserRow | None:
        return await self._one("WHERE u.username = $1", username)

    async def by_id(self, user_id: str) -> UserRow | None:
        return await self._one("WHERE u.id = $1", user_id)

    async def all(self) -> list[UserRow]:
        rows = await self.db.fetch(f"{USER_SELECT} ORDER BY u.created_at, u.username")
        return [UserRow.from_row(row) for row in rows]

    async def create(
        self, user_id: str, username: str, now: int, *, default_general_access: GeneralAccess
    ) -> UserRow:
        try:
            await self.db.execute(
                "INSERT INTO users (id, username, created_at, default_general_access)"
                " VALUES ($1, $2, $3, $4)",
                user_id, username, now, str(default_general_access),
            )  # fmt: skip
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"A user named {username!r} already exists.") from exc
        return UserRow(user_id, username, now, GeneralAccess(default_general_access))

    async def set_default_general_access(self, user_id: str, access: GeneralAccess) -> None:
        await self.db.execute(
            "UPDATE users SET default_general_access = $2 WHERE id = $1", user_id, str(access)
        )

    async def add_token(self, user_id: str, token_hash: str, now: int, *, name: str | None = None) -> None:
        try:
            await self.db.execute(
                "INSERT INTO tokens (hash, user_id, created_at, name) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (hash) DO NOTHING",
                token_hash, user_id, now, name,
            )  # fmt: skip
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFound("User was not found.") from exc

    async def tokens(self, user_id: str | None = None) -> list[TokenRow]:
        if user_id is None:
            rows = await self.db.fetch(f"{TOKEN_SELECT} ORDER BY created_at, hash")
        else:
            rows = await self.db.fetch(
                f"{TOKEN_SELECT} WHERE user_id = $1 ORDER BY created_at, hash", user_id
            )
        return [TokenRow.from_row(row) for row in rows]

    async def delete_token(self, token_hash: str) -> bool:
        return count(await self.db.execute("DELETE FROM tokens WHERE hash = $1", token_hash)) > 0
