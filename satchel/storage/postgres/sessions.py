"""Console sessions; each references its token, so deleting the token deletes them (ON DELETE CASCADE)."""

from __future__ import annotations

import asyncpg

from satchel.storage.postgres.db import Database, count
from satchel.storage.rows import SessionRow


class PostgresSessions:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, session_hash: str, token_hash: str, now: int, expires_at: int) -> bool:
        try:
            status = await self.db.execute(
                "INSERT INTO sessions (hash, token_hash, created_at, expires_at)"
                " SELECT $1::text, hash, $2::bigint, $3::bigint FROM tokens WHERE hash = $4",
                session_hash, now, expires_at, token_hash,
            )  # fmt: skip
        except asyncpg.ForeignKeyViolationError:  # the token was revoked between the select and the insert
            return False
        return count(status) > 0

    async def get(self, session_hash: str, now: int) -> SessionRow | None:
        row = await self.db.fetchrow(
            "SELECT s.hash, s.token_hash, s.created_at, s.expires_at"
            " FROM sessions s JOIN tokens t ON t.hash = s.token_hash WHERE s.hash = $1 AND s.expires_at > $2",
            session_hash, now,
        )  # fmt: skip
        return SessionRow.from_row(row) if row is not None else None

    async def delete(self, session_hash: str) -> bool:
        return count(await self.db.execute("DELETE FROM sessions WHERE hash = $1", session_hash)) > 0

    async def delete_expired(self, now: int, limit: int) -> int:
        status = await self.db.execute(
            "DELETE FROM sessions WHERE hash IN"
            " (SELECT hash FROM sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
            now, limit,
        )  # fmt: skip
        return count(status)
