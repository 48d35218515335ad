"""The web Console: pages rendered on the server from the same services the API calls.

The browser runs no application code and never holds the API token in script: signing in puts the token in an
HttpOnly, SameSite=Strict cookie scoped to /console, forms post back here, and every page asks service/ with
the caller that token names, so the Console can do exactly what that user could do through the API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from satchel.console import account, records, stores
from satchel.console.forms import (
    PREFIX,
    STORES,
    field,
    human_size,
    local_path,
    read_form,
    redirect,
    same_origin,
    when,
)
from satchel.errors import Forbidden, InvalidRequest, SatchelError
from satchel.service import Caller, Services
from satchel.storage import UserRow

COOKIE = "satchel_console"
# The pages load only their own stylesheet and script; nothing may frame them.
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
ASSETS = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}

Page = Callable[["Console", Request, Caller], Awaitable[Response]]
GET, POST = ["GET"], ["POST"]


class Console:
    cookie = COOKIE

    def __init__(self, services: Services) -> None:
        self.services = services
        self.templates = Environment(loader=PackageLoader("satchel.console"), autoescape=select_autoescape())
        self.templates.filters["size"] = human_size
        self.templates.filters["when"] = when
        page = self._signed_in
        store = f"{STORES}/{{store}}"
        record = f"{store}/records/{{key}}"
        account_path = f"{PREFIX}/account"
        self.router = Router(
            [
                Route("/", self.home),
                Route(PREFIX, self.home),
                Route(f"{PREFIX}/", self.home),
                Route(f"{PREFIX}/assets/{{name}}", self.asset),
                Route(f"{PREFIX}/login", self.login, methods=["GET", "POST"]),
                Route(f"{PREFIX}/logout", self.logout, methods=POST),
                Route(account_path, page(account.account), methods=GET),
                Route(f"{account_path}/access", page(account.set_access), methods=POST),
                Route(f"{account_path}/tokens", page(account.create_token), methods=POST),
                Route(f"{account_path}/tokens/{{token_id}}/revoke", page(account.revoke_token), methods=POST),
                Route(STORES, page(stores.stores), methods=["GET", "POST"]),
                Route(store, page(stores.store), methods=GET),
                Route(f"{store}/settings", page(stores.settings), methods=POST),
                Route(f"{store}/delete", page(stores.delete), methods=POST),
                Route(f"{store}/shares", page(stores.share), methods=POST),
                Route(f"{store}/records", page(records.upload), methods=POST),
                Route(record, page(records.record), methods=GET),
                Route(f"{record}/raw", page(records.raw), methods=GET),
                Route(f"{record}/delete", page(records.delete), methods=POST),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)

    def render(
        self, request: Request, template: str, caller: Caller | None, *, status: int = 200, **context: Any
    ) -> Response:
        html = self.templates.get_template(template).render(
            user=caller.user if caller else None, path=request.url.path, **context
        )
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    @staticmethod
    def user(caller: Caller) -> UserRow:
        assert caller.user is not None, "pages run for signed-in callers only"
        return caller.user

    async def _caller(self, request: Request) -> Caller | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            caller = await self.services.users.authenticate(token)
        except SatchelError:
            return None
        return caller if caller.user is not None else None

    def _signed_in(self, page: Page) -> Callable[[Request], Awaitable[Response]]:
        """Run a page for a signed-in caller; send others to the sign-in form, and show errors as a page."""

        async def run(request: Request) -> Response:
            caller = await self._caller(request)
            if caller is None:
                return redirect(f"{PREFIX}/login?{urlencode({'next': request.url.path})}")
            try:
                if request.method == "POST" and not same_origin(request):
                    raise Forbidden("The form came from another site.")
                return await page(self, request, caller)
            except SatchelError as error:
                return self.render(request, "error.html", caller, status=error.status, message=error.message)

        return run

    async def home(self, request: Request) -> Response:
        return redirect(STORES)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return Response("Not found.", 404, media_type="text/plain")
        body = resources.files("satchel.console").joinpath("assets", name).read_bytes()
        return Response(body, media_type=ASSETS[name], headers={"cache-control": "max-age=300"})

    async def login(self, request: Request) -> Response:
        next_page = local_path(request.query_params.get("next"))
        if request.method == "GET":
            return self.render(request, "login.html", None, next=next_page)
        try:
            if not same_origin(request):
                return self._login_refused(request, next_page, 403, "The form came from another site.")
            token = field(await read_form(request), "token")
        except InvalidRequest as error:
            return self._login_refused(request, next_page, 400, error.message)
        try:
            caller = await self.services.users.authenticate(token) if token else None
        except SatchelError:
            caller = None
        if caller is None or caller.user is None:
            return self._login_refused(request, next_page, 401, "That token is not valid.")
        response = redirect(next_page)
        secure = request.url.scheme == "https"
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=PREFIX, secure=secure)
        return response

    def _login_refused(self, request: Request, next_page: str, status: int, error: str) -> Response:
        return self.render(request, "login.html", None, status=status, next=next_page, error=error)

    async def logout(self, request: Request) -> Response:
        response = redirect(f"{PREFIX}/login")
        response.delete_cookie(COOKIE, path=PREFIX)
        return response
