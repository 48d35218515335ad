"""Console sessions in SQLite; a trigger on tokens (migrations.py, step 3) deletes a token's sessions."""

from __future__ import annotations

import sqlite3

from satchel.storage.rows import SessionRow
from satchel.storage.sqlite.db import Database


def _create_session(
    conn: sqlite3.Connection, session_hash: str, token_hash: str, now: int, expires_at: int
) -> bool:
    # Made only while the token is held, checked in the same transaction as the insert.
    inserted = conn.execute(
        "INSERT INTO sessions (hash, token_hash, created_at, expires_at)"
        " SELECT ?, hash, ?, ? FROM tokens WHERE hash = ?",
        (session_hash, now, expires_at, token_hash),
    )
    return inserted.rowcount > 0


def _delete_session(conn: sqlite3.Connection, session_hash: str) -> bool:
    return conn.execute("DELETE FROM sessions WHERE hash = ?", (session_hash,)).rowcount > 0


def _delete_expired_sessions(conn: sqlite3.Connection, now: int, limit: int) -> int:
    return conn.execute(
        "DELETE FROM sessions WHERE hash IN"
        " (SELECT hash FROM sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
        (now, limit),
    ).rowcount


class SqliteSessions:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, session_hash: str, token_hash: str, now: int, expires_at: int) -> bool:
        return await self.db.write(_create_session, session_hash, token_hash, now, expires_at)

    async def get(self, session_hash: str, now: int) -> SessionRow | None:
        row = self.db.one(
            "SELECT s.hash, s.token_hash, s.created_at, s.expires_at"
            " FROM sessions s JOIN tokens t ON t.hash = s.token_hash WHERE s.hash = ? AND s.expires_at > ?",
            (session_hash, now),
        )
        return SessionRow.from_row(row) if row else None

    async def delete(self, session_hash: str) -> bool:
        return await self.db.write(_delete_session, session_hash, frees=True)

    async def delete_expired(self, now: int, limit: int) -> int:
        return await self.db.write(_delete_expired_sessions, now, limit, frees=True)
