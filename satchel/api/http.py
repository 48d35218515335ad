"""Reading a request the way the API defines it: token, query parameters, JSON bodies."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from satchel.errors import InvalidRequest, TooLarge, UnsupportedTransferCoding
from satchel.service.access import Caller
from satchel.service.encoding import Decoder, normalize
from satchel.service.services import Services
from satchel.service.stores import Listing

MAX_JSON_BYTES = 1024 * 1024
DEFAULT_PAGE = 1000  # storages per list page when the caller names no limit
TRUE = ("true", "1")
FALSE = ("false", "0")


@dataclass(slots=True)
class Call:
    """One API request as a handler sees it: the request, its path parameters and who sent it.

    The Starlette Request is made only when a handler asks for it: a record GET reads the raw scope alone.
    """

    scope: Scope
    receive: Receive
    method: str
    query: dict[str, str]
    services: Services
    caller: Caller
    params: dict[str, str]  # path parameters by their template names: `storeId`, `recordKey`, ...
    _request: Request | None = None

    @property
    def request(self) -> Request:
        if self._request is None:
            self._request = Request(self.scope, self.receive)
        return self._request

    def header(self, name: bytes) -> str | None:
        return header(self.scope, name)

    @property
    def base_url(self) -> str:
        return self.services.settings.base_url

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean parameter: Python sends true/false, JavaScript 1/0; both count."""
        value = self.query.get(name)
        if value is None or value == "":
            return default
        lowered = value.lower()
        if lowered in TRUE:
            return True
        if lowered in FALSE:
            return False
        raise InvalidRequest(
            f"Parameter `{name}` must be a boolean (true, false, 1 or 0).", type="invalid-value"
        )

    def number(self, name: str, default: int) -> int:
        """A non-negative whole-number parameter; `10.0` counts as 10."""
        value = self.query.get(name)
        if value is None or value == "":
            return default
        try:
            # float() alone would also take "1_000" and non-ASCII digits ("١٢"): neither is a number here.
            ok = len(value) < 32 and value.isascii() and "_" not in value
            number = float(value) if ok else -1.0
        except ValueError:
            number = -1.0
        if not math.isfinite(number) or number < 0 or number != int(number) or number > 2**53:
            raise InvalidRequest(f"Parameter `{name}` must be a non-negative integer.", type="invalid-value")
        return int(number)

    def listing(self) -> Listing:
        """The parameters of a list of storages of any kind, as the services' page() takes them."""
        return Listing(
            offset=self.number("offset", 0),
            limit=self.number("limit", DEFAULT_PAGE),
            desc=self.flag("desc"),
            unnamed=self.flag("unnamed"),
            ownership=self.text("ownership"),
        )

    def text(self, name: str) -> str | None:
        value = self.query.get(name)
        return value if value else None


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of one request header (name in lower case), read straight off the ASGI list.

    The same answer as `request.headers.get`, without building a Headers object for one look.
    """
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def declares_body(scope: Scope) -> bool:
    """Whether the request says a body follows (HTTP/1.1: a Content-Length above 0, or chunks); one without
    has none, so nothing needs to watch or time it."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def check_transfer_coding(scope: Scope) -> None:
    """Refuse a body sent in a transfer coding besides chunked (`gzip, chunked`): the HTTP server only
    unchunks it, so its bytes would be stored still gzipped, as something the client never sent."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            for coding in value.split(b","):
                if coding.strip().lower() not in (b"chunked", b""):
                    raise UnsupportedTransferCoding(
                        "Only the chunked transfer coding is understood here; send the body chunked alone"
                        " (a compressed body goes with Content-Encoding instead)."
                    )


class RawResponse(Response):
    """A response whose header list the handler built itself, in the order Starlette would have.

    The record routes answer most requests; skipping Starlette's header assembly (a dict, then a list, then
    a scan for content-length and content-type) is a measurable part of their cost.
    """

    def __init__(self, body: bytes, status_code: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.body = body
        self.status_code = status_code
        self.raw_headers = raw_headers
        self.background = None


def bearer_token(scope: Scope, query: dict[str, str]) -> str | None:
    value = header(scope, b"authorization")
    if value:
        scheme, _, value = value.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return query.get("token") or None


async def body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, read off `receive` (Starlette's stream: one more layer a chunk)."""
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise InvalidRequest(
                "The body ended before it was whole: the client closed the connection, or its chunked"
                " framing is malformed."
            )
        chunk = message.get("body")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def content_encoding(request: Request) -> str | None:
    """The request's Content-Encoding, every line of it: two header lines mean the same as one comma-joined
    line (two encodings applied in turn), which is refused, rather than the first one taken alone."""
    values = [
        value.decode("latin-1") for name, value in request.scope["headers"] if name == b"content-encoding"
    ]
    return ", ".join(values) if values else None


def declared_length(request: Request) -> int | None:
    """The body's Content-Length, if the request states one (the HTTP server has checked it is a number)."""
    value = header(request.scope, b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


async def read_decoded(request: Request, limit: int, what: str = "JSON body") -> bytes:
    """The whole body, decoded per Content-Encoding; refused (413) past `limit` bytes, declared or decoded."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        # Known before reading; waiting for a body that large (or one never sent) helps nobody.
        raise TooLarge(f"The {what} is larger than {limit} bytes.", type="request-too-large")
    encoding = normalize(content_encoding(request))
    decoder = Decoder(encoding) if encoding else None
    parts: list[bytes] = []
    size = 0

    def take(pieces: Any) -> None:
        nonlocal size
        for piece in pieces:
            size += len(piece)
            if size > limit:
                raise TooLarge(f"The {what} is larger than {limit} bytes.", type="request-too-large")
            parts.append(piece)

    async for chunk in body_chunks(request):
        take(decoder.feed(chunk) if decoder else (chunk,))
    if decoder:
        take(decoder.finish())
    return b"".join(parts)


async def read_json(request: Request) -> Any:
    """The body as JSON (decoded per Content-Encoding), or None when there is none."""
    raw = await read_decoded(request, MAX_JSON_BYTES)
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from exc


async def read_json_object(request: Request) -> dict[str, Any]:
    data = await read_json(request)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return data


async def read_creation(call: Call) -> tuple[str | None, dict[str, Any]]:
    """What a get-or-create of a storage names: `name` from the query or the JSON body, and the body.

    The type is checked before the empty-name fallback, so `{"name": []}` or `{"name": 0}` is refused
    rather than making an unnamed storage."""
    body = await read_json_object(call.request)
    name = call.text("name") or body.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidRequest("Field `name` must be a string.", type="invalid-value")
    return name or None, body
