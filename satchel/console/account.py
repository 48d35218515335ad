"""Console pages for the signed-in user: their default general access and their API tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from satchel.console.forms import PREFIX, field, read_form, redirect
from satchel.service.access import USER_GENERAL_ACCESS, Caller
from satchel.service.ids import token_hash
from satchel.service.users import token_id

if TYPE_CHECKING:
    from satchel.console.app import Console

ACCOUNT = f"{PREFIX}/account"
# A token just made goes to the account page in this cookie, so the page is reached by a redirect and a reload
# of it makes no second token. It lives a minute, only on that page, and the page shows it once and clears it;
# it is shown only if it is still one of the signed-in user's tokens.
NEW_TOKEN_COOKIE = "satchel_new_token"  # noqa: S105 - a cookie name, not a secret


async def account(console: Console, request: Request, caller: Caller) -> Response:
    user = console.user(caller)
    current = console.session(request).token_hash  # the token this session was made from
    new_token = request.cookies.get(NEW_TOKEN_COOKIE)
    new_hash = token_hash(new_token) if new_token else None
    rows = await console.services.users.tokens(user.username)
    tokens = [
        {"id": token_id(t), "name": t.name, "created_at": t.created_at, "current": t.hash == current}
        for t in rows
    ]
    made = next((t for t in rows if t.hash == new_hash), None)
    response = console.render(
        request,
        "account.html",
        caller,
        tokens=tokens,
        new_token=new_token if made else None,
        new_token_name=made.name if made else None,
        accesses=USER_GENERAL_ACCESS,
    )
    if new_token is not None:  # shown once
        response.delete_cookie(NEW_TOKEN_COOKIE, path=ACCOUNT, httponly=True, samesite="strict")
    return response


async def set_access(console: Console, request: Request, caller: Caller) -> Response:
    form = await read_form(request)
    await console.services.users.set_default_access(console.user(caller).username, field(form, "access"))
    return redirect(ACCOUNT, "saved")


async def create_token(console: Console, request: Request, caller: Caller) -> Response:
    name = field(await read_form(request), "name") or None
    token = await console.services.users.create_token(console.user(caller).username, name=name)
    # Only its digest is kept: the page after the redirect shows it, once.
    response = redirect(ACCOUNT)  # the page says it, showing the token
    secure = request.url.scheme == "https"
    response.set_cookie(
        NEW_TOKEN_COOKIE, token, max_age=60, path=ACCOUNT, httponly=True, secure=secure, samesite="strict"
    )
    return response


async def revoke_token(console: Console, request: Request, caller: Caller) -> Response:
    user = console.user(caller)
    await console.services.users.revoke_token(request.path_params["token_id"], user_id=user.id)
    return redirect(ACCOUNT, "revoked")
