"""The web Console: pages rendered on the server from the same services the API calls.

The browser runs no application code and never holds the API token in script: signing in puts the token in an
HttpOnly, SameSite=Strict cookie scoped to /console, forms post back here, and every page asks service/ with
the caller that token names, so the Console can do exactly what that user could do through the API.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import iterate_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route, Router

from satchel.clock import iso
from satchel.errors import InvalidRequest, SatchelError
from satchel.service import Caller, Services
from satchel.service.access import GENERAL_ACCESS, USER_GENERAL_ACCESS, Level
from satchel.service.encoding import decode_chunks
from satchel.service.ids import token_hash
from satchel.service.signing import record_signature, storage_signature
from satchel.service.users import token_id
from satchel.storage import RecordRead

PREFIX = "/console"
COOKIE = "satchel_console"
KEYS_PER_PAGE = 100
STORES_PER_PAGE = 50
PREVIEW_BYTES = 256 * 1024
CHUNK = 256 * 1024
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/ld+json")
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
# Record bodies shown raw: sandboxed, so stored HTML or SVG cannot run script on this origin.
RAW_HEADERS = {"content-security-policy": "sandbox", "x-content-type-options": "nosniff"}
ASSETS = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}

Page = Callable[["Console", Request, Caller], Awaitable[Response]]


def signed_in(page: Page) -> Callable[[Console, Request], Awaitable[Response]]:
    """Run a page for a signed-in caller; send others to the sign-in form and show errors as a page."""

    async def run(self: Console, request: Request) -> Response:
        caller = await self.caller(request)
        if caller is None:
            return _redirect(f"{PREFIX}/login?{urlencode({'next': request.url.path})}")
        if request.method == "POST" and not _same_origin(request):
            return self.render(
                request, "error.html", caller, status=403, message="The form came from another site."
            )
        try:
            return await page(self, request, caller)
        except SatchelError as error:
            return self.render(request, "error.html", caller, status=error.status, message=error.message)

    return run


class Console:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.templates = Environment(
            loader=PackageLoader("satchel.console"), autoescape=select_autoescape(), enable_async=False
        )
        self.templates.filters["size"] = _human_size
        self.templates.filters["when"] = _when
        route = Route
        self.router = Router(
            [
                route("/", self.home),
                route("/console", self.home),
                route("/console/", self.home),
                route("/console/assets/{name}", self.asset),
                route("/console/login", self.login, methods=["GET", "POST"]),
                route("/console/logout", self.logout, methods=["POST"]),
                route("/console/account", self.account, methods=["GET"]),
                route("/console/account/access", self.account_access, methods=["POST"]),
                route("/console/account/tokens", self.create_token, methods=["POST"]),
                route("/console/account/tokens/{token_id}/revoke", self.revoke_token, methods=["POST"]),
                route("/console/key-value-stores", self.stores, methods=["GET", "POST"]),
                route("/console/key-value-stores/{store}", self.store, methods=["GET"]),
                route("/console/key-value-stores/{store}/settings", self.store_settings, methods=["POST"]),
                route("/console/key-value-stores/{store}/delete", self.delete_store, methods=["POST"]),
                route("/console/key-value-stores/{store}/shares", self.share, methods=["POST"]),
                route("/console/key-value-stores/{store}/records", self.upload, methods=["POST"]),
                route("/console/key-value-stores/{store}/records/{key}", self.record, methods=["GET"]),
                route(
                    "/console/key-value-stores/{store}/records/{key}/raw", self.raw_record, methods=["GET"]
                ),
                route(
                    "/console/key-value-stores/{store}/records/{key}/delete",
                    self.delete_record,
                    methods=["POST"],
                ),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.router(scope, receive, send)

    # --- plumbing

    async def caller(self, request: Request) -> Caller | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            caller = await self.services.users.authenticate(token)
        except SatchelError:
            return None
        return caller if caller.user is not None else None

    def render(
        self, request: Request, template: str, caller: Caller | None, *, status: int = 200, **context: Any
    ) -> Response:
        html = self.templates.get_template(template).render(
            user=caller.user if caller else None, path=request.url.path, **context
        )
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return Response("Not found.", 404, media_type="text/plain")
        body = resources.files("satchel.console").joinpath("assets", name).read_bytes()
        return Response(body, media_type=ASSETS[name], headers={"cache-control": "max-age=300"})

    # --- signing in

    async def home(self, request: Request) -> Response:
        return _redirect(f"{PREFIX}/key-value-stores")

    async def login(self, request: Request) -> Response:
        next_page = _local_path(request.query_params.get("next"))
        if request.method == "GET":
            return self.render(request, "login.html", None, next=next_page)
        if not _same_origin(request):
            return self.render(
                request,
                "login.html",
                None,
                status=403,
                next=next_page,
                error="The form came from another site.",
            )
        try:
            form = await _form(request, files=0, fields=4)
        except InvalidRequest as error:
            return self.render(request, "login.html", None, status=400, next=next_page, error=error.message)
        token = str(form.get("token") or "").strip()
        try:
            caller = await self.services.users.authenticate(token) if token else None
        except SatchelError:
            caller = None
        if caller is None or caller.user is None:
            return self.render(
                request, "login.html", None, status=401, next=next_page, error="That token is not valid."
            )
        response = _redirect(next_page)
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", path=PREFIX, secure=request.url.scheme == "https"
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = _redirect(f"{PREFIX}/login")
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    # --- the account: default access and tokens

    @signed_in
    async def account(self, request: Request, caller: Caller) -> Response:
        return await self._account_page(request, caller)

    async def _account_page(self, request: Request, caller: Caller, new_token: str | None = None) -> Response:
        user = _user(caller)
        tokens = await self.services.users.tokens(user.username)
        current = token_hash(request.cookies.get(COOKIE, ""))
        rows = [{"id": token_id(t), "created_at": t.created_at, "current": t.hash == current} for t in tokens]
        return self.render(
            request,
            "account.html",
            caller,
            tokens=rows,
            new_token=new_token,
            accesses=USER_GENERAL_ACCESS,
        )

    @signed_in
    async def account_access(self, request: Request, caller: Caller) -> Response:
        form = await _form(request, files=0, fields=4)
        await self.services.users.set_default_access(_user(caller).username, str(form.get("access") or ""))
        return _redirect(f"{PREFIX}/account")

    @signed_in
    async def create_token(self, request: Request, caller: Caller) -> Response:
        token = await self.services.users.create_token(_user(caller).username)
        # Shown once, on this response only: only its digest is kept.
        return await self._account_page(request, caller, new_token=token)

    @signed_in
    async def revoke_token(self, request: Request, caller: Caller) -> Response:
        await self.services.users.revoke_token(request.path_params["token_id"], user_id=_user(caller).id)
        return _redirect(f"{PREFIX}/account")

    # --- stores

    @signed_in
    async def stores(self, request: Request, caller: Caller) -> Response:
        if request.method == "POST":
            form = await _form(request, files=0, fields=4)
            name = str(form.get("name") or "").strip() or None
            store, _ = await self.services.stores.get_or_create(caller, name, None)
            return _redirect(_store_path(store.id))
        query = request.query_params
        ownership = query.get("ownership") or None
        unnamed = query.get("unnamed") == "1"
        offset = _whole(query.get("offset"))
        page = await self.services.stores.page(
            caller, offset=offset, limit=STORES_PER_PAGE, desc=True, unnamed=unnamed, ownership=ownership
        )
        return self.render(
            request,
            "stores.html",
            caller,
            page=page,
            ownership=ownership or "",
            unnamed=unnamed,
            previous=max(offset - STORES_PER_PAGE, 0) if offset > 0 else None,
            next=offset + STORES_PER_PAGE if offset + STORES_PER_PAGE < page.total else None,
        )

    @signed_in
    async def store(self, request: Request, caller: Caller) -> Response:
        ref = request.path_params["store"]
        query = request.query_params
        prefix = query.get("prefix") or None
        after = query.get("after") or None
        keys = await self.services.records.list_keys(
            caller, ref, exclusive_start_key=after, limit=KEYS_PER_PAGE, prefix=prefix, collection=None
        )
        # Looked up afresh (not the hot path's cached row), so its stats include the latest writes.
        store, have = await self.services.stores.get(caller, ref)
        shares = (await self.services.stores.shares(caller, ref))[1] if have >= Level.OWNER else []
        api_url = f"{self.services.settings.base_url}/v2/key-value-stores/{store.id}"
        # Writers hold the signing secret, so the API's own signed URL serves them the archive.
        zip_url = None
        if have >= Level.WRITE:
            zip_url = (
                f"{api_url}/records?signature={storage_signature(store.url_signing_secret_key, store.id)}"
            )
        return self.render(
            request,
            "store.html",
            caller,
            store=store,
            level=have,
            Level=Level,
            keys=keys,
            prefix=prefix or "",
            shares=shares,
            accesses=GENERAL_ACCESS,
            api_url=api_url,
            zip_url=zip_url,
        )

    @signed_in
    async def store_settings(self, request: Request, caller: Caller) -> Response:
        ref = request.path_params["store"]
        form = await _form(request, files=0, fields=8)
        changes: dict[str, Any] = {}
        if "name" in form:
            changes["name"] = str(form["name"]).strip() or None
        if form.get("generalAccess"):
            changes["generalAccess"] = str(form["generalAccess"])
        store = await self.services.stores.update(caller, ref, changes)
        return _redirect(_store_path(store.id))

    @signed_in
    async def delete_store(self, request: Request, caller: Caller) -> Response:
        await self.services.stores.delete(caller, request.path_params["store"])
        return _redirect(f"{PREFIX}/key-value-stores")

    @signed_in
    async def share(self, request: Request, caller: Caller) -> Response:
        ref = request.path_params["store"]
        form = await _form(request, files=0, fields=4)
        username = str(form.get("username") or "").strip()
        if not username:
            raise InvalidRequest("Give the username to share the store with.")
        access = str(form.get("access") or "").lower()
        await self.services.stores.share(caller, ref, username, None if access == "none" else access)
        return _redirect(_store_path(ref) + "#sharing")

    # --- records

    @signed_in
    async def upload(self, request: Request, caller: Caller) -> Response:
        ref = request.path_params["store"]
        form = await _form(request, files=1, fields=8)
        key = str(form.get("key") or "").strip()
        file = form.get("file")
        text = form.get("text")
        content_type = str(form.get("contentType") or "").strip()
        if isinstance(file, UploadFile) and file.filename:
            chunks: AsyncIterator[bytes] = _upload_chunks(file)
            key = key or file.filename
            content_type = content_type or file.content_type or ""
        elif isinstance(text, str) and text:
            chunks = _one(text.encode())
            content_type = content_type or "text/plain; charset=utf-8"
        else:
            raise InvalidRequest("Choose a file or type a value to store.")
        if not key:
            raise InvalidRequest("Give the record a key.", type="invalid-record-key")
        await self.services.records.put(
            caller, ref, key, content_type=content_type, content_encoding=None, chunks=chunks
        )
        return _redirect(_record_path(ref, key))

    @signed_in
    async def record(self, request: Request, caller: Caller) -> Response:
        ref, key = request.path_params["store"], request.path_params["key"]
        store, have = await self.services.stores.get(caller, ref)
        _, record = await self.services.records.get(caller, ref, key)
        head = record.head
        preview = None
        base = head.content_type.split(";")[0].strip().lower()
        textual = base.startswith(TEXT_TYPES) or base.endswith(("+json", "+xml"))
        if textual and head.raw_size <= PREVIEW_BYTES:
            preview = await asyncio.to_thread(_preview, record, pretty_json="json" in base)
        public_url = None
        if have >= Level.WRITE:
            signature = record_signature(store.url_signing_secret_key, key)
            record_url = f"{self.services.settings.base_url}/v2/key-value-stores/{store.id}/records"
            public_url = f"{record_url}/{quote(key, safe='')}?signature={signature}"
        return self.render(
            request,
            "record.html",
            caller,
            store=store,
            head=head,
            level=have,
            Level=Level,
            preview=preview,
            image=base.startswith("image/"),
            public_url=public_url,
        )

    @signed_in
    async def raw_record(self, request: Request, caller: Caller) -> Response:
        ref, key = request.path_params["store"], request.path_params["key"]
        _, record = await self.services.records.get(caller, ref, key)
        head = record.head
        headers = dict(RAW_HEADERS)
        if request.query_params.get("download"):
            headers["content-disposition"] = f"attachment; filename*=UTF-8''{quote(key)}"
        if head.content_encoding is None and record.path is not None:
            return FileResponse(
                record.path, headers=headers, media_type=head.content_type, stat_result=os.stat(record.path)
            )
        if head.content_encoding is None:
            return Response(record.body or b"", headers=headers, media_type=head.content_type)
        chunks = decode_chunks(record.chunks(), head.content_encoding)
        return StreamingResponse(iterate_in_threadpool(chunks), headers=headers, media_type=head.content_type)

    @signed_in
    async def delete_record(self, request: Request, caller: Caller) -> Response:
        ref, key = request.path_params["store"], request.path_params["key"]
        await self.services.records.delete(caller, ref, key)
        return _redirect(_store_path(ref))


# --- helpers


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"cache-control": "no-store"})


def _user(caller: Caller) -> Any:
    assert caller.user is not None
    return caller.user


def _store_path(ref: str) -> str:
    return f"{PREFIX}/key-value-stores/{quote(ref, safe='~')}"


def _record_path(ref: str, key: str) -> str:
    return f"{_store_path(ref)}/records/{quote(key, safe='')}"


def _local_path(value: str | None) -> str:
    """Where to go after signing in: only a path within the Console, never another site."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/key-value-stores"


def _same_origin(request: Request) -> bool:
    """Whether a form post came from this site (SameSite cookies aside, a second guard against CSRF)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True  # browsers send Origin on form posts; tools that do not are not cross-site forms
    return urlsplit(origin).netloc == request.headers.get("host")


async def _form(request: Request, *, files: int, fields: int) -> FormData:
    """The posted form; a malformed one is a 400 like any bad input, not a server error."""
    try:
        return await request.form(max_files=files, max_fields=fields)
    except (MultiPartException, HTTPException) as exc:
        raise InvalidRequest(f"The form could not be read: {getattr(exc, 'detail', None) or exc}.") from exc


def _whole(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 10 else 0


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _upload_chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await file.read(CHUNK):
        yield chunk


def _preview(record: RecordRead, *, pretty_json: bool) -> str:
    chunks = record.chunks()
    if record.head.content_encoding:
        chunks = decode_chunks(chunks, record.head.content_encoding)
    raw = b"".join(chunks)[:PREVIEW_BYTES]
    if pretty_json:
        try:
            return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONDecodeError:
            pass
    return raw.decode("utf-8", "replace")


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _when(ms: int) -> str:
    return iso(ms).replace("T", " ")[:19] + " UTC"
