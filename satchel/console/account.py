"""Console pages for the signed-in user: their default general access and their API tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from satchel.console.forms import PREFIX, field, read_form, redirect
from satchel.service.access import USER_GENERAL_ACCESS, Caller
from satchel.service.users import token_id

if TYPE_CHECKING:
    from satchel.console.app import Console

ACCOUNT = f"{PREFIX}/account"


async def account(
    console: Console,
    request: Request,
    caller: Caller,
    new_token: str | None = None,
    new_token_name: str | None = None,
) -> Response:
    user = console.user(caller)
    current = console.session(request).token_hash  # the token this session was made from
    tokens = [
        {"id": token_id(t), "name": t.name, "created_at": t.created_at, "current": t.hash == current}
        for t in await console.services.users.tokens(user.username)
    ]
    return console.render(
        request,
        "account.html",
        caller,
        tokens=tokens,
        new_token=new_token,
        new_token_name=new_token_name,
        accesses=USER_GENERAL_ACCESS,
    )


async def set_access(console: Console, request: Request, caller: Caller) -> Response:
    form = await read_form(request)
    await console.services.users.set_default_access(console.user(caller).username, field(form, "access"))
    return redirect(ACCOUNT, "saved")


async def create_token(console: Console, request: Request, caller: Caller) -> Response:
    name = field(await read_form(request), "name") or None
    token = await console.services.users.create_token(console.user(caller).username, name=name)
    # Shown once, on this response only: only its digest is kept.
    return await account(console, request, caller, new_token=token, new_token_name=name)


async def revoke_token(console: Console, request: Request, caller: Caller) -> Response:
    user = console.user(caller)
    await console.services.users.revoke_token(request.path_params["token_id"], user_id=user.id)
    return redirect(ACCOUNT, "revoked")
