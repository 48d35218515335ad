"""Users: the one behind the token, and any user's public face."""

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
    return wire.json_response(
        {
            "id": user.id,
            "username": user.username,
            "profile": {},
            "createdAt": iso(user.created_at),
            "defaultGeneralAccess": user.default_general_access,
        }
    )


async def public(call: Call) -> Response:
    """What anyone may know of a user, by id or username (as on the hosted API, no token needed)."""
    user = await call.services.users.find(call.params["userId"])
    return wire.json_response({"username": user.username, "profile": {}})
