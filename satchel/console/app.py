"""The web Console: pages rendered on the server from the same services the API calls.

The browser runs no application code and never holds the API token: signing in with a token starts a session
(signin.py) whose random id goes in an HttpOnly, SameSite=Strict cookie scoped to /console, forms post back
here (and are refused from other sites), and every page asks service/ with the caller the session's token
names, so the Console can do exactly what that user could do through the API.

A browser that goes away while sending a form is not an error: it is noted at debug level, without a stack.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from satchel.console import account, datasets, queues, records, runs, signin, stores
from satchel.console.forms import (
    NOTE_COOKIE,
    NOTES,
    PREFIX,
    STORES,
    came_from,
    here,
    human_size,
    redirect,
    same_origin,
    way_back,
    when,
)
from satchel.console.records import PREVIEW_BYTES
from satchel.console.signin import COOKIE, SignInLimits, drop_session_cookie
from satchel.console.snippets import TOKEN_VARIABLE
from satchel.errors import Forbidden, NotFound, SatchelError
from satchel.service.access import Caller
from satchel.service.services import Services
from satchel.service.sessions import Session
from satchel.storage import UserRow

log = logging.getLogger(__name__)
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
ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}

Page = Callable[["Console", Request, Caller], Awaitable[Response]]
Open = Callable[["Console", Request], Awaitable[Response]]
GET, POST = ["GET"], ["POST"]


class Console:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.sign_ins = SignInLimits(services.settings)
        self.templates = Environment(loader=PackageLoader("satchel.console"), autoescape=select_autoescape())
        self.templates.filters["size"] = human_size
        self.templates.filters["when"] = when
        self.templates.globals["preview_bytes"] = PREVIEW_BYTES
        self.templates.globals["token_variable"] = TOKEN_VARIABLE
        page, form = self._signed_in, self._form
        store = f"{STORES}/{{store}}"
        record = f"{store}/records/{{key}}"
        account_path = f"{PREFIX}/account"
        self.router = Router(
            [
                Route("/", self.home),
                Route(PREFIX, self.home),
                Route(f"{PREFIX}/", self.home),
                Route(f"{PREFIX}/assets/{{name}}", self.asset),
                Route(f"{PREFIX}/login", self._open(signin.login), methods=["GET", "POST"]),
                Route(f"{PREFIX}/logout", self._open(signin.logout), methods=["GET", "POST"]),
                Route(account_path, page(account.account), methods=GET),
                form(f"{account_path}/access", account.set_access, account_path),
                form(f"{account_path}/tokens", account.create_token, account_path),
                form(f"{account_path}/tokens/{{token_id}}/revoke", account.revoke_token, account_path),
                Route(STORES, page(stores.stores), methods=["GET", "POST"]),
                Route(store, page(stores.store), methods=GET),
                form(f"{store}/settings", stores.settings, store),
                form(f"{store}/delete", stores.delete, store),
                form(f"{store}/shares", stores.share, store),
                form(f"{store}/records", records.upload, store),
                Route(f"{store}/zip", page(records.download_all), methods=GET),
                Route(record, page(records.record), methods=GET),
                Route(f"{record}/raw", page(records.raw), methods=GET),
                form(f"{record}/delete", records.delete, store),
                *self._storage_routes(datasets.DATASETS.path, datasets.datasets, datasets.dataset, datasets),
                Route(f"{datasets.DATASETS.path}/{{store}}/items", page(datasets.download), methods=GET),
                *self._storage_routes(queues.QUEUES.path, queues.queues, queues.queue, queues),
                Route(f"{queues.QUEUES.path}/{{store}}/requests/{{request}}", page(queues.queue_request)),
                Route(runs.RUNS, page(runs.runs), methods=GET),
                Route(f"{runs.RUNS}/{{run}}", page(runs.run), methods=GET),
                Route(f"{runs.RUNS}/{{run}}/log", page(runs.log), methods=GET),
                form(f"{runs.RUNS}/{{run}}/abort", runs.abort, f"{runs.RUNS}/{{run}}"),
            ],
            default=self._no_page,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.router(scope, receive, send)
        except ClientDisconnect:
            # Forms are read whole before anything is done with them, so nothing was changed, and nobody is
            # left to answer. (Hundreds of these once wrote a traceback each to the log.)
            log.debug("client went away while sending %s %s", scope.get("method"), scope.get("path"))

    def render(
        self, request: Request, template: str, caller: Caller | None, *, status: int = 200, **context: Any
    ) -> Response:
        note = request.cookies.get(NOTE_COOKIE)
        html = self.templates.get_template(template).render(
            user=caller.user if caller else None, path=request.url.path, note=NOTES.get(note or ""), **context
        )
        response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
        if note is not None:  # said once
            response.delete_cookie(NOTE_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    @staticmethod
    def user(caller: Caller) -> UserRow:
        assert caller.user is not None, "pages run for signed-in callers only"
        return caller.user

    @staticmethod
    def session(request: Request) -> Session:
        """The session a signed-in page runs in."""
        session: Session = request.state.session
        return session

    def _signed_in(self, page: Page) -> Callable[[Request], Awaitable[Response]]:
        """Run a page for a signed-in caller; send others to the sign-in form, and show errors as a page."""

        async def run(request: Request) -> Response:
            try:
                session = await self.services.sessions.resume(request.cookies.get(COOKIE))
            except SatchelError as error:  # the database does not answer, say
                return self.error(request, None, error)
            if session is None:
                # Back after signing in to the page asked for, or to the page a form was sent from; a session
                # this browser held and lost (expired, or its token revoked) is said to have ended.
                back = here(request) if request.method in ("GET", "HEAD") else came_from(request)
                sign_in = f"{PREFIX}/login?{urlencode({'next': back})}"
                if request.cookies.get(COOKIE):
                    return drop_session_cookie(redirect(sign_in, "session-ended"))
                return redirect(sign_in)
            request.state.session = session
            caller = session.caller
            try:
                if request.method == "POST" and not same_origin(request):
                    raise Forbidden("The form came from another site.")
                return await page(self, request, caller)
            except SatchelError as error:
                return self.error(request, caller, error)

        return run

    def error(self, request: Request, caller: Caller | None, error: SatchelError) -> Response:
        """The page that says what did not work, with a way back to the page the request came from."""
        back, back_label = way_back(request)
        return self.render(
            request,
            "error.html",
            caller,
            status=error.status,
            message=error.message,
            back=back,
            back_label=back_label,
        )

    def _storage_routes(self, path: str, listing: Page, one: Page, pages: ModuleType) -> list[Route]:
        """The routes every kind of storage has: its list (and create), one of it, settings, sharing,
        deletion."""
        one_path = f"{path}/{{store}}"
        return [
            Route(path, self._signed_in(listing), methods=["GET", "POST"]),
            Route(one_path, self._signed_in(one), methods=GET),
            self._form(f"{one_path}/settings", pages.settings, one_path),
            self._form(f"{one_path}/delete", pages.delete, one_path),
            self._form(f"{one_path}/shares", pages.share, one_path),
        ]

    def _form(self, path: str, page: Page, page_path: str) -> Route:
        """A route a form posts to. Asked for with GET (from history, or an address bar that kept the post's
        URL) it sends the browser on to the form's own page, `page_path` with the same parameters."""
        signed_in = self._signed_in(page)

        async def run(request: Request) -> Response:
            if request.method == "POST":
                return await signed_in(request)
            params = {name: quote(value, safe="~") for name, value in request.path_params.items()}
            return redirect(page_path.format(**params))

        return Route(path, run, methods=["GET", "POST"])

    async def _no_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An unknown address: said as a Console page, with the signed-in header when there is a session."""
        request = Request(scope, receive)
        session = await self.session_if_any(request)
        caller = session.caller if session else None
        await self.error(request, caller, NotFound("There is no such page."))(scope, receive, send)

    async def session_if_any(self, request: Request) -> Session | None:
        """The request's session for a page that any visitor may see: None when there is none, it has
        ended, or the database does not answer (the page then says only what it can)."""
        try:
            return await self.services.sessions.resume(request.cookies.get(COOKIE))
        except SatchelError:
            return None

    def _open(self, page: Open) -> Callable[[Request], Awaitable[Response]]:
        """Run a page that needs no session (signing in and out)."""

        async def run(request: Request) -> Response:
            return await page(self, request)

        return run

    async def home(self, request: Request) -> Response:
        return redirect(STORES)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return Response("Not found.", 404, media_type="text/plain")
        body = resources.files("satchel.console").joinpath("assets", name).read_bytes()
        return Response(body, media_type=ASSETS[name], headers={"cache-control": "max-age=300"})
