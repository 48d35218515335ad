"""The ASGI application: one dispatcher from raw path to handler, errors mapped to the API's envelope.

A hand-rolled dispatcher instead of a framework router: the record routes must route on the raw path (see
routing.py), and the per-request cost of a full framework stack shows directly in the GET hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from granian.utils.proxies import wrap_asgi_with_proxy_headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from satchel.api.docs_page import PREFIX as DOCS_PREFIX
from satchel.api.docs_page import DocsPage
from satchel.api.errors import error_response, from_error
from satchel.api.http import Call, bearer_token, check_transfer_coding
from satchel.api.operations import PATHS as OPERATIONS
from satchel.api.operations import Operations
from satchel.api.pauses import Pauses
from satchel.api.ratelimit import RateLimits
from satchel.api.request_log import ROUTE, USER, RequestObserver
from satchel.api.routing import Route, resolve
from satchel.api.unread import body_watch, settle
from satchel.console import Console
from satchel.errors import InvalidRequest, MethodNotAllowed, SatchelError
from satchel.logs import flush_logs
from satchel.metrics import Metrics
from satchel.service.access import Caller
from satchel.service.services import Services

log = logging.getLogger("satchel.api")
OVERRIDABLE = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
READS = frozenset(("GET", "HEAD"))
CORS_HEADERS = {
    "access-control-allow-origin": "*",
    "access-control-expose-headers": (
        "Location, Content-Encoding, Content-Disposition, X-RateLimit-Limit, X-Apify-Pagination-Offset,"
        " X-Apify-Pagination-Limit, X-Apify-Pagination-Count, X-Apify-Pagination-Total,"
        " X-Apify-Pagination-Desc, X-Request-Id, ETag, Last-Modified, Accept-Ranges, Content-Range,"
        " Retry-After"
    ),
}
# Appended to every response as is: no handler sets these names itself.
CORS_RAW = [(name.encode(), value.encode()) for name, value in CORS_HEADERS.items()]
MAX_QUERY_BYTES = 16 * 1024
CONSOLE_PREFIX = "/console"
API_PREFIX = "/v2/"


class SatchelApp:
    def __init__(self, services: Services) -> None:
        self.settings = settings = services.settings
        self.services = services
        self.metrics = metrics = Metrics(services.storage) if settings.metrics else None
        self.limits = RateLimits(settings, on_reject=metrics.rejected if metrics else None)
        self.pauses = Pauses()
        if metrics:
            services.retention.on_sweep = metrics.sweep_done
        self.observer = observer = RequestObserver(metrics, log_requests=settings.request_log)
        self.console = observer.around(Console(services))
        self.docs = observer.around(DocsPage())
        self.operations = observer.around(Operations(services, metrics))
        # Requests over HTTP: what a server in front (connections.py) calls directly, one frame fewer.
        self.http: ASGIApp = self._http
        if settings.forwarded_allow_ips:
            # Behind a proxy: the client's address and scheme as the proxy saw them, from its X-Forwarded-*
            # headers when the request comes from an address the setting names (granian's wrapper). The
            # connection guard, in front, still matches connections by the socket's own peer.
            self.http = wrap_asgi_with_proxy_headers(self.http, settings.forwarded_allow_ips)
        self._limit_headers = {
            n: _limit_header(n) for n in (self.limits.per_resource, self.limits.per_record)
        }
        # Run on the event loop once the app has started: what the process serving it adds (serving.py).
        self.on_startup: list[Callable[[], None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def startup(self) -> None:
        await self.services.start()
        self.pauses.start()
        if self.metrics:
            self.metrics.start()
        for started in self.on_startup:
            started()

    async def shutdown(self) -> None:
        self.pauses.stop()
        if self.metrics:
            await self.metrics.stop()
        await self.services.stop()
        flush_logs()  # a worker process ends without running atexit

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Each part of the server by its path; the API's own routes are found in _dispatch (scope[ROUTE] is
        the route's label in the logs and metrics). One coroutine for both: a frame per request costs a
        GET about 0.5 us of its 20."""
        path = scope["path"]
        if not path.startswith(API_PREFIX):
            if path.startswith(CONSOLE_PREFIX) or path == "/":
                scope[ROUTE] = CONSOLE_PREFIX
                await self.console(scope, receive, send)
                return
            if path in OPERATIONS:
                scope[ROUTE] = path
                await self.operations(scope, receive, send)
                return
            if path == DOCS_PREFIX or path.startswith(DOCS_PREFIX + "/"):
                scope[ROUTE] = DOCS_PREFIX
                await self.docs(scope, receive, send)
                return
        head = scope["method"] == "HEAD"
        limit = [self.limits.per_resource]  # the endpoint's limit, once routing knows it
        watch = body_watch(scope, receive, self.pauses)
        if watch is not None:
            receive = watch
        observer = self.observer
        seen = observer.begin(scope)
        try:  # the request's log line and counts, however it ends
            try:
                if watch is not None:  # a body comes
                    check_transfer_coding(scope)
                response = await self._dispatch(scope, receive, limit)
            except SatchelError as error:
                response = await settle(from_error(error, head=head), scope, watch)
            except ClientDisconnect:  # the client went away while sending: nobody to answer, nothing wrong
                log.debug("client went away while sending %s %s", scope["method"], scope.get("path"))
                return
            except Exception:
                log.exception("unexpected error on %s %s", scope["method"], scope.get("path"))
                response = error_response(
                    500, "internal-server-error", "The server failed; try again.", head=head
                )
                response = await settle(response, scope, watch)
            response.raw_headers.extend(CORS_RAW)
            response.raw_headers.append(self._limit_headers.get(limit[0]) or _limit_header(limit[0]))
            await response(scope, receive, observer.answering(seen, response, send))
        finally:
            observer.end(scope, seen, watch)

    async def _dispatch(self, scope: Scope, receive: Receive, limit: list[int]) -> Response:
        query_string: bytes = scope["query_string"]
        if len(query_string) > MAX_QUERY_BYTES:
            raise InvalidRequest(f"The query string is longer than {MAX_QUERY_BYTES} bytes.")
        query = (
            dict(parse_qsl(query_string.decode("utf-8", "replace"), keep_blank_values=True))
            if query_string
            else {}
        )
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        route, params = resolve(raw_path.partition(b"?")[0])
        scope[ROUTE] = route.template
        methods = route.methods
        method = scope["method"]
        override = query.get("method")
        if override:
            method = override.upper()
            if method not in OVERRIDABLE:
                raise InvalidRequest(f"Parameter `method` must be one of {', '.join(OVERRIDABLE)}.")
        record = route.counts_as_record(method)
        limit[0] = self.limits.limit(record=record)
        if method == "OPTIONS":
            return _preflight(methods)
        if method not in READS:
            self.pauses.check()
        endpoint = methods.get(method)
        strip_body = False
        if endpoint is None and method == "HEAD" and "GET" in methods:
            endpoint, strip_body = methods["GET"], True
        if endpoint is None:
            raise MethodNotAllowed(("OPTIONS", *methods))
        caller = await self._authenticate(scope, query, route, params, record=record)
        call = Call(scope, receive, method, query, self.services, caller, params)
        response = await endpoint.handler(call)
        if strip_body or method == "HEAD":
            # A real HEAD keeps Content-Length; a GET overridden to HEAD gets an honest empty body.
            return _headers_only(response, keep_length=scope["method"] == "HEAD")
        return response

    async def _authenticate(
        self, scope: Scope, query: dict[str, str], route: Route, params: dict[str, str], *, record: bool
    ) -> Caller:
        """Who is calling, with the request counted: per user, or per IP for those without a valid token."""
        limits = self.limits
        try:
            caller = await self.services.users.authenticate(bearer_token(scope, query))
        except SatchelError:
            if limits.enabled:
                ip = _client_ip(scope)
                await limits.hit(who=ip, resource=f"ip:{ip}", record=False)
            raise
        scope[USER] = caller.user_id
        if limits.enabled:
            who = caller.user_id or _client_ip(scope)
            # A storage is one resource however it is spelled, so spellings cannot multiply its limit.
            if route.storage and (ref := params[route.storage[0]]):
                resource = await self.services.stores.counting_key(
                    caller, ref, who=who, kind=route.storage[1]
                )
            else:
                resource = f"user:{who}"
            await limits.hit(who=who, resource=resource, record=record)
        return caller


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _limit_header(limit: int) -> tuple[bytes, bytes]:
    return (b"x-ratelimit-limit", str(limit).encode())


def _preflight(methods: dict[str, Any]) -> Response:
    return Response(
        status_code=204,
        headers={
            "allow": ", ".join(("OPTIONS", *methods)),
            "access-control-allow-methods": ", ".join(("OPTIONS", *methods)),
            "access-control-allow-headers": (
                "Authorization, Content-Type, Content-Encoding, If-Match, If-None-Match, If-Modified-Since,"
                " Range, If-Range, X-Request-Id, Idempotency-Key"
            ),
            "access-control-max-age": "86400",
        },
    )


def _headers_only(response: Response, *, keep_length: bool) -> Response:
    """The same status and headers with no body, for HEAD."""
    bare = Response(b"", status_code=response.status_code)
    bare.raw_headers = [
        (name, value) for name, value in response.raw_headers if keep_length or name != b"content-length"
    ] + ([] if keep_length else [(b"content-length", b"0")])
    return bare
