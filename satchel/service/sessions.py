"""Console sessions: signing in with a token starts one, named by a random id that only the browser holds.

The cookie carries the id, never the token, and the database keeps only the id's SHA-256 digest (an id is 256
random bits, so a fast digest is as safe an index as it is for tokens). A session ends when it expires
(`console_session_hours` after sign-in), when its user signs out (its row is deleted, so a copied cookie stops
working), or when the token it was made from is revoked (the engines delete a token's sessions with it).
Sessions live in the metadata database, not in a process, so every node knows every session and an ended one
is refused everywhere at once; they are read afresh on each page, never cached.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from satchel.clock import now_ms
from satchel.errors import Unauthorized
from satchel.service.access import Caller
from satchel.service.ids import token_hash
from satchel.service.lookups import Lookups
from satchel.service.users import Users
from satchel.storage.base import SessionTable

ID_BYTES = 32  # 256 bits: neither guessed nor enumerated
MAX_ID_LENGTH = 64  # a cookie longer than any id is not looked up
PURGE_BATCH = 1000


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: who it signs in, the digest of the token it was made from, and when it ends."""

    caller: Caller
    token_hash: str
    expires_at: int


class Sessions:
    def __init__(
        self, table: SessionTable, users: Users, lookups: Lookups, *, lifetime_seconds: float
    ) -> None:
        self.table = table
        self.users = users
        self.lookups = lookups
        self.lifetime_ms = max(int(lifetime_seconds * 1000), 1)

    async def start(self, token: str) -> tuple[str, Session]:
        """Sign in with a token: the new session's id (for the cookie, returned only here) and the session.

        Raises Unauthorized when the token is not one a user holds.
        """
        caller = await self.users.authenticate(token) if token else None
        if caller is None or caller.user is None:
            raise Unauthorized("That token is not valid.", type="invalid-token")
        session_id = secrets.token_urlsafe(ID_BYTES)
        now = now_ms()
        expires_at = now + self.lifetime_ms
        digest = token_hash(token)
        # The engine makes it only while the token is held, so a revocation racing this cannot be outlived.
        if not await self.table.create(session_digest(session_id), digest, now, expires_at):
            raise Unauthorized("That token is not valid.", type="invalid-token")
        return session_id, Session(caller, digest, expires_at)

    async def resume(self, session_id: str | None) -> Session | None:
        """The live session a cookie names, or None (unknown, expired, signed out, or its token revoked)."""
        if not session_id or len(session_id) > MAX_ID_LENGTH:
            return None
        row = await self.table.get(session_digest(session_id), now_ms())
        if row is None:
            return None
        user = await self.lookups.user_by_token_hash(row.token_hash)
        if user is None:
            return None
        return Session(Caller(user), row.token_hash, row.expires_at)

    async def end(self, session_id: str | None) -> bool:
        """Sign out: the session is gone for good, on every node."""
        if not session_id or len(session_id) > MAX_ID_LENGTH:
            return False
        return await self.table.delete(session_digest(session_id))

    async def purge(self) -> int:
        """Delete expired sessions (already refused; this only reclaims their rows). Returns how many went."""
        now = now_ms()
        gone = 0
        while True:
            batch = await self.table.delete_expired(now, PURGE_BATCH)
            gone += batch
            if batch < PURGE_BATCH:
                return gone
