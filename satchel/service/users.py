"""Users and their tokens: who a token belongs to, the admin made on first start, and account management."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from satchel.clock import now_ms
from satchel.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from satchel.service.access import ANONYMOUS, USER_GENERAL_ACCESS, Caller
from satchel.service.ids import new_id, new_token, token_hash
from satchel.service.lookups import Lookups
from satchel.service.validation import shown
from satchel.storage import GeneralAccess, Storage, TokenRow, UserRow

log = logging.getLogger(__name__)
TOKEN_FILE = "admin-token"  # noqa: S105 - a file name
USERNAME_RE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,62}[a-zA-Z0-9])?")
MAX_TOKEN_NAME = 64
TOKEN_ID_LENGTH = 12  # how much of a token's digest names it in listings; enough to be unique in practice


class Users:
    def __init__(self, storage: Storage, lookups: Lookups) -> None:
        self.table = storage.users
        self.lookups = lookups

    async def authenticate(self, token: str | None) -> Caller:
        if not token:
            return ANONYMOUS
        user = await self.lookups.user_by_token_hash(token_hash(token))
        if user is None:
            raise Unauthorized(
                "User was not found or authentication token is not valid.", type="invalid-token"
            )
        return Caller(user)

    async def find(self, id_or_name: str) -> UserRow:
        user = await self.table.by_id(id_or_name) or await self.table.by_name(id_or_name)
        if user is None:
            # record-not-found, as the hosted API says it: the official clients' get() then answers None
            raise NotFound(f"User {shown(id_or_name)} was not found.")
        return user

    async def create(
        self, username: str, *, default_general_access: str = GeneralAccess.RESTRICTED
    ) -> tuple[UserRow, str]:
        """A new user and their first token (returned once: only its digest is kept)."""
        if USERNAME_RE.fullmatch(username) is None or "~" in username:
            raise InvalidRequest(
                f"Username {username!r} is not valid: use 1-64 letters, digits, dots, hyphens and"
                " underscores, starting and ending with a letter or digit.",
                type="invalid-value",
            )
        access = _check_access(default_general_access)
        user = await self.table.create(new_id(), username, now_ms(), default_general_access=access)
        return user, await self.create_token(username)

    async def all(self) -> list[tuple[UserRow, int]]:
        """Every user with how many tokens they hold."""
        counts: dict[str, int] = {}
        for token in await self.table.tokens():
            counts[token.user_id] = counts.get(token.user_id, 0) + 1
        return [(user, counts.get(user.id, 0)) for user in await self.table.all()]

    async def set_default_access(self, username: str, access: str) -> UserRow:
        user = await self.find(username)
        await self.table.set_default_general_access(user.id, _check_access(access))
        await self.lookups.changed()
        return await self.find(user.id)

    async def create_token(self, username: str, *, name: str | None = None) -> str:
        """A new token for the user, with an optional name to tell it apart (the token is shown once)."""
        user = await self.find(username)
        token = new_token()
        await self.table.add_token(user.id, token_hash(token), now_ms(), name=_check_token_name(name))
        return token

    async def tokens(self, username: str) -> list[TokenRow]:
        return await self.table.tokens((await self.find(username)).id)

    async def revoke_token(self, token_or_id: str, *, user_id: str | None = None) -> TokenRow:
        """Revoke a token given itself or the id `tokens list` shows (the start of its digest).

        With `user_id`, only that user's tokens are candidates: a user revoking their own from the Console.
        """
        wanted = token_or_id.strip()
        digest = token_hash(wanted)
        tokens = await self.table.tokens(user_id) if user_id else await self.table.tokens()
        matches = [t for t in tokens if t.hash == digest]
        if not matches and len(wanted) >= 8 and re.fullmatch(r"[0-9a-f]+", wanted):
            matches = [t for t in tokens if t.hash.startswith(wanted)]
        if len(matches) != 1:
            # A revoked token is deleted, digest and all: one revoked already cannot be told from a typo, so
            # both are said, and both fail (a typo must not pass for a revoked token).
            raise NotFound(
                "No such token: it was revoked already, or never made."
                if not matches
                else "That id names several tokens; give more of it."
            )
        await self.table.delete_token(matches[0].hash)
        await self.lookups.changed()
        return matches[0]

    async def ensure_admin(self, username: str, data_dir: Path, token: str = "") -> tuple[UserRow, str, bool]:
        """Make sure the admin exists and holds a token; return it, the token, and whether it is new.

        The token is kept in the data dir (mode 600) so later starts and the CLI can show where it is.
        """
        token_file = data_dir / TOKEN_FILE
        user = await self.table.by_name(username)
        created = False
        if user is None:
            try:
                user = await self.table.create(
                    new_id(), username, now_ms(), default_general_access=GeneralAccess.RESTRICTED
                )
                created = True
            except Conflict:  # another node starting at the same moment made it
                user = await self.table.by_name(username)
                assert user is not None
        if not token and token_file.exists():
            kept = token_file.read_text().strip()
            # A kept token that was revoked stays revoked: a new one replaces it.
            holder = await self.table.by_token_hash(token_hash(kept)) if kept else None
            token = kept if holder is not None and holder.id == user.id else ""
        if not token:
            token = new_token()
            created = True
        await self.table.add_token(user.id, token_hash(token), now_ms())
        if not token_file.exists() or token_file.read_text().strip() != token:
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at start
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
        return user, token, created


def token_id(row: TokenRow) -> str:
    return row.hash[:TOKEN_ID_LENGTH]


def _check_access(access: str) -> GeneralAccess:
    if access not in USER_GENERAL_ACCESS:
        raise InvalidRequest(
            f"A user's default general access must be one of {', '.join(USER_GENERAL_ACCESS)}.",
            type="invalid-value",
        )
    return GeneralAccess(access)


def _check_token_name(name: str | None) -> str | None:
    """A token's name, trimmed (empty: none): up to MAX_TOKEN_NAME printable characters."""
    name = (name or "").strip()
    if len(name) > MAX_TOKEN_NAME or not name.isprintable():
        raise InvalidRequest(
            f"A token's name is up to {MAX_TOKEN_NAME} printable characters.", type="invalid-value"
        )
    return name or None
