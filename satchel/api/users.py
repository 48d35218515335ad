"""The user behind the token."""

from __future__ import annotations

from starlette.responses import Response

from satchel.api import wire
from satchel.api.http import Call
from satchel.clock import iso
from satchel.errors import Unauthorized


async def me(call: Call) -> Response:
    user = call.caller.user
    if user is None:
        raise Unauthorized("Authentication token was not provided.")
    return wire.json_response({"id": user.id, "username": user.username, "createdAt": iso(user.created_at)})
