"""Signing in and out of the Console, and the limit on failed sign-ins.

Signing in trades a token for a session (service/sessions.py): the cookie holds the session's random id, never
the token. Signing out deletes the session, so a copy of the cookie stops working too. Both are form posts and
both are refused when they come from another site.

Failed sign-ins are counted per client address and per token tried, SIGN_IN_FAILURES_PER_MINUTE of either in a
minute, after which sign-ins from there (or with that token) get 429 until the minute is over, whether the
token is right or not: a guesser learns nothing more. The counters live where the API's do (`memory://` per
process, or Redis shared by nodes), and apply whatever `rate_limit` says: they cost nothing when nobody fails.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from limits import RateLimitItemPerMinute
from starlette.requests import Request
from starlette.responses import Response

from satchel.console.forms import PREFIX, field, local_path, read_form, redirect, same_origin
from satchel.counters import Counters
from satchel.errors import Forbidden, InvalidRequest, SatchelError, Unauthorized
from satchel.logs import Occasional
from satchel.service.ids import token_hash
from satchel.settings import Settings

if TYPE_CHECKING:
    from satchel.console.app import Console

log = logging.getLogger(__name__)
COOKIE = "satchel_console"
SIGN_IN_FAILURES_PER_MINUTE = 10
WARN_EVERY_SECONDS = 10.0
CROSS_SITE = "The form came from another site."


class SignInLimits:
    def __init__(self, settings: Settings) -> None:
        self._limiter = Counters(settings.rate_limit_storage)
        self._item = RateLimitItemPerMinute(SIGN_IN_FAILURES_PER_MINUTE)
        self._counters_down = Occasional(log, WARN_EVERY_SECONDS)

    @staticmethod
    def _keys(address: str, token: str) -> list[str]:
        # A token tried is counted by its digest: the counters (perhaps in Redis) never hold a token.
        return [f"ip:{address}", *([f"token:{token_hash(token)}"] if token else [])]

    async def wait(self, address: str, token: str) -> int | None:
        """Seconds until a sign-in from the address with the token may be tried again; None: now."""
        try:
            for key in self._keys(address, token):
                if not await self._limiter.test(self._item, "sign-in", key):
                    stats = await self._limiter.window_stats(self._item, "sign-in", key)
                    return max(math.ceil(stats.reset_time - time.time()), 1)
        except Exception as exc:  # counters that do not answer (Redis down) do not lock everyone out
            self._warn(exc)
        return None

    async def failed(self, address: str, token: str) -> None:
        try:
            for key in self._keys(address, token):
                await self._limiter.hit(self._item, "sign-in", key)
        except Exception as exc:
            self._warn(exc)

    def _warn(self, exc: Exception) -> None:
        self._counters_down.log(
            logging.WARNING, "sign-in counters do not answer (%s); failed sign-ins go uncounted", exc
        )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login(console: Console, request: Request) -> Response:
    next_page = local_path(request.query_params.get("next"))
    if request.method == "GET":
        # No database: the form, which says so when sent.
        if await console.session_if_any(request) is not None:
            return redirect(next_page)  # signed in already (a bookmark, the back button)
        return console.render(request, "login.html", None, next=next_page)

    def refused(status: int, error: str) -> Response:
        return console.render(request, "login.html", None, status=status, next=next_page, error=error)

    if not same_origin(request):
        return refused(403, CROSS_SITE)
    try:
        token = field(await read_form(request), "token")
    except InvalidRequest as error:
        return refused(400, error.message)
    address = client_address(request)
    wait = await console.sign_ins.wait(address, token)
    if wait is not None:
        response = refused(429, f"Too many failed sign-ins. Wait {wait} seconds, then try again.")
        response.headers["retry-after"] = str(wait)
        return response
    try:
        session_id, _ = await console.services.sessions.start(token)
        # A session this browser held before ends here: one browser, one session.
        await console.services.sessions.end(request.cookies.get(COOKIE))
    except Unauthorized:
        await console.sign_ins.failed(address, token)
        return refused(401, "That token is not valid.")
    except SatchelError as error:  # the database does not answer, say
        return refused(error.status, error.message)
    response = redirect(next_page)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=console.services.sessions.lifetime_ms // 1000,
        path=PREFIX,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


async def logout(console: Console, request: Request) -> Response:
    if request.method == "GET":
        # The address typed, bookmarked, or named by a sign-in's next=: a page that asks, since only a form
        # from this site signs out (a link from elsewhere must not).
        session = await console.session_if_any(request)
        if session is None:
            return redirect(f"{PREFIX}/login")
        return console.render(request, "logout.html", session.caller)
    try:
        if not same_origin(request):
            raise Forbidden(CROSS_SITE)
        await console.services.sessions.end(request.cookies.get(COOKIE))
    except SatchelError as error:
        return console.error(request, None, error)
    return drop_session_cookie(redirect(f"{PREFIX}/login", "signed-out"))


def drop_session_cookie(response: Response) -> Response:
    """The session cookie taken from the browser (signed out, or its session ended), named with the path and
    flags it was set with, as a browser needs to drop it."""
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response
