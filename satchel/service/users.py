"""Users and their tokens: who a token belongs to, and the admin made on first start."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from satchel.clock import now_ms
from satchel.errors import Unauthorized
from satchel.service.access import ANONYMOUS, Caller
from satchel.service.ids import new_id, new_token, token_hash
from satchel.storage import Engine, UserRow

log = logging.getLogger(__name__)
TOKEN_FILE = "admin-token"  # noqa: S105 - a file name


class Users:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def authenticate(self, token: str | None) -> Caller:
        if not token:
            return ANONYMOUS
        user = await self.engine.user_by_token_hash(token_hash(token))
        if user is None:
            raise Unauthorized(
                "User was not found or authentication token is not valid.", type="invalid-token"
            )
        return Caller(user)

    async def ensure_admin(self, username: str, data_dir: Path, token: str = "") -> tuple[UserRow, str, bool]:
        """Make sure the admin exists and holds a token; return it, the token, and whether it is new.

        The token is kept in the data dir (mode 600) so later starts and the CLI can show where it is.
        """
        token_file = data_dir / TOKEN_FILE
        user = await self.engine.user_by_name(username)
        created = False
        if user is None:
            user = await self.engine.create_user(new_id(), username, now_ms())
            created = True
        if not token:
            token = token_file.read_text().strip() if token_file.exists() else ""
        if not token:
            token = new_token()
            created = True
        await self.engine.add_token(user.id, token_hash(token), now_ms())
        if not token_file.exists() or token_file.read_text().strip() != token:
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
        return user, token, created
