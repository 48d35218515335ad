"""What every Console page shares: reading forms, redirects, Console paths and the templates' filters.

Forms are bounded as they arrive. A form of fields is read whole, up to FORM_BYTES. An upload is read part by
part as it streams in (StreamedForm): its file goes straight to the record being written, so nothing of it
is spooled anywhere but where storage puts bodies (under the data dir, with its full-disk guard, or the
object store), and no more of it is read than max_record_bytes allows. Starlette's own parser spooled every
file to the system temp folder, whole, before the size was looked at: measured, a 10 GiB upload (limit 4 GiB)
was refused after 70 s with 10 GiB in the temp folder; now by its Content-Length in 20 ms, or, sent without
one, once 4 GiB had gone into the data dir (and were removed), the worker's memory flat throughout.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.types import Message, Receive

from satchel.clock import iso
from satchel.errors import InvalidRequest
from satchel.service.stores import Listing
from satchel.service.validation import is_digits

PREFIX = "/console"
STORES = f"{PREFIX}/key-value-stores"
FORM_BYTES = 64 * 1024  # a form of fields: names, a token, a few settings
FIELD_BYTES = 1024 * 1024  # one field of an upload form (the typed value), as Starlette bounds a part
# What an upload form carries beside its file: the typed value, the key and content type, part headers and
# boundaries. A body longer than max_record_bytes plus this cannot hold an acceptable file.
FORM_SLACK = FIELD_BYTES + 64 * 1024
MAX_PARTS = 8
MAX_PART_HEADERS = 8
MAX_PART_HEADER_BYTES = 4096


async def read_form(request: Request, *, fields: int = 8, limit: int = FORM_BYTES) -> FormData:
    """A posted form of fields (no files), read whole; a malformed one is a 400 like any bad input, not a
    server error, and one longer than `limit` a 413, refused by its Content-Length before it is read."""
    length = declared_length(request)
    if length is not None and length > limit:
        raise _form_too_large(limit)
    bounded = Request(request.scope, _bounded(request.receive, limit))
    try:
        return await bounded.form(max_files=0, max_fields=fields)
    except (MultiPartException, HTTPException) as exc:
        raise _unreadable(str(getattr(exc, "detail", None) or exc)) from exc


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def declared_length(request: Request) -> int | None:
    """The body's Content-Length, if the request states one (the HTTP server has checked it is a number)."""
    value = request.headers.get("content-length")
    return int(value) if value is not None and is_digits(value) else None


class FormTooLarge(InvalidRequest):
    """A form longer than its bound (an InvalidRequest, so every page that reads a form refuses it so)."""

    type = "request-too-large"
    status = 413


def _form_too_large(limit: int) -> FormTooLarge:
    return FormTooLarge(f"The form is larger than the limit of {limit} bytes.")


def _bounded(receive: Receive, limit: int) -> Receive:
    """The ASGI receive of a request whose body may not pass `limit` bytes (a body without Content-Length,
    sent in chunks, is counted as it comes)."""
    received = 0

    async def bounded_receive() -> Message:
        nonlocal received
        message: Message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _form_too_large(limit)
        return message

    return bounded_receive


@dataclass(slots=True)
class FormPart:
    name: str
    filename: str | None  # None for a field; a file input always has one ("" when no file was chosen)
    content_type: str | None


class StreamedForm:
    """A multipart/form-data body read a part at a time as it arrives, held in memory one chunk at a time.

    `next_part()` gives each part's name; the part's data then streams from `data()` (or whole, bounded, from
    `value()`); what a caller does not read is skipped. A body that cannot hold a file of at most `max_file`
    bytes (with FORM_SLACK for the rest of the form) is refused: at once when its Content-Length says so, or
    as soon as that many bytes have come. `complete` says whether all of it was read (if not, the connection
    cannot carry another request).
    """

    def __init__(self, request: Request, *, max_file: int) -> None:
        self.complete = False
        self._limit = max_file + FORM_SLACK
        self._max_file = max_file
        length = declared_length(request)
        if length is not None and length > self._limit:
            raise self._too_large()
        kind, options = parse_options_header(request.headers.get("content-type"))
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise _unreadable("it is not multipart/form-data with a boundary")
        self._body = request.stream()
        self._received = 0
        self._parts = 0
        self._events: deque[tuple[str, Any]] = deque()
        self._headers: list[tuple[bytes, bytes]] = []
        self._header = [b"", b""]
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._headers.clear,
                "on_header_field": lambda data, start, end: self._add_header(0, data[start:end]),
                "on_header_value": lambda data, start, end: self._add_header(1, data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": lambda data, start, end: self._events.append(("data", data[start:end])),
                "on_part_end": lambda: self._events.append(("part-end", None)),
                "on_end": lambda: self._events.append(("end", None)),
            },
            max_header_count=MAX_PART_HEADERS,
            max_header_size=MAX_PART_HEADER_BYTES,
        )

    def _too_large(self) -> FormTooLarge:
        return FormTooLarge(f"The upload is larger than the limit of {self._max_file} bytes for a record.")

    def _add_header(self, which: int, data: bytes) -> None:
        self._header[which] += data

    def _header_end(self) -> None:
        self._headers.append((self._header[0].lower(), self._header[1]))
        self._header = [b"", b""]

    def _headers_finished(self) -> None:
        headers = dict(self._headers)
        _, options = parse_options_header(headers.get(b"content-disposition"))
        if b"name" not in options:
            raise _unreadable("a part has no name")
        filename = options.get(b"filename")
        content_type = headers.get(b"content-type")
        self._events.append(
            (
                "part",
                FormPart(
                    _text(options[b"name"]),
                    None if filename is None else _text(filename),
                    None if content_type is None else content_type.decode("latin-1"),
                ),
            )
        )

    async def _next(self) -> tuple[str, Any]:
        while not self._events:
            chunk = None if self.complete else await anext(self._body, None)
            if chunk is None:
                self.complete = True
                raise _unreadable("it ended before its last part did")
            self._received += len(chunk)
            if self._received > self._limit:
                raise self._too_large()
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise _unreadable(str(exc)) from exc
        return self._events.popleft()

    async def next_part(self) -> FormPart | None:
        """The next part, skipping what is left of the one before; None once the form has ended."""
        while True:
            kind, value = await self._next()
            if kind == "part":
                self._parts += 1
                if self._parts > MAX_PARTS:
                    raise _unreadable(f"it has more than {MAX_PARTS} parts")
                return value  # type: ignore[no-any-return]
            if kind == "end":
                async for rest in self._body:  # what follows the closing boundary is not part of the form
                    self._received += len(rest)
                    if self._received > self._limit:
                        raise self._too_large()
                self.complete = True
                return None

    async def data(self) -> AsyncIterator[bytes]:
        """The current part's data as it arrives."""
        while True:
            kind, value = await self._next()
            if kind == "part-end":
                return
            if kind != "data":
                raise _unreadable("it is not valid multipart/form-data")
            if value:
                yield value

    async def value(self, limit: int = FIELD_BYTES) -> str:
        """The current part's data whole, as text; a field larger than `limit` bytes is refused."""
        pieces: list[bytes] = []
        size = 0
        async for piece in self.data():
            size += len(piece)
            if size > limit:
                raise FormTooLarge(f"A field of the form is larger than the limit of {limit} bytes.")
            pieces.append(piece)
        return _text(b"".join(pieces))


def _unreadable(why: str) -> InvalidRequest:
    # The parsers' own words mostly end with a full stop already ("Missing boundary in multipart.").
    return InvalidRequest(f"The form could not be read: {why.rstrip('.')}.")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


async def one_chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


NOTE_COOKIE = "satchel_note"
# What the page after a form says was done. The redirect names one of these in a cookie that lives a minute
# and the next page clears: a fixed text by its code, so nothing sent can put words on the page, and nothing
# is kept on the server (any node shows it).
NOTES = {
    "created": "Created.",
    "exists": "That name is taken: this is the one that has it.",
    "saved": "Saved.",
    "deleted": "Deleted.",
    "shared": "Sharing saved.",
    "rotated": "New signing key made: every signed link made before it has stopped working.",
    "revoked": "Token revoked: it no longer works.",
    "aborted": "The run was marked aborted.",
    "aborting": "The run is aborting: its command has been told, and is stopped if it has not ended in 30 s.",
    "stopped": "The run is aborted: satchel run stops its command now (killed if it has not ended in 10 s).",
    "finished": "The run had already finished: nothing was aborted.",
    "signed-out": "Signed out.",
    "session-ended": "Your session has ended (its time was up, or the token it was made from was revoked):"
    " sign in again.",
}


def redirect(url: str, note: str | None = None) -> RedirectResponse:
    """A redirect after a form (303, so the browser GETs the page), with what was done to say there."""
    response = RedirectResponse(url, status_code=303, headers={"cache-control": "no-store"})
    if note is not None:
        assert note in NOTES, note
        response.set_cookie(NOTE_COOKIE, note, max_age=60, path=PREFIX, httponly=True, samesite="strict")
    return response


def store_path(ref: str) -> str:
    return f"{STORES}/{quote(ref, safe='~')}"


def record_path(ref: str, key: str) -> str:
    return f"{store_path(ref)}/records/{quote(key, safe='')}"


def local_path(value: str | None) -> str:
    """Where to go after signing in: only a path within the Console, never another site."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return STORES


def here(request: Request) -> str:
    """The page asked for, with its query, to come back to after signing in."""
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


def came_from(request: Request) -> str:
    """The Console page a request was made from (a form's own page, by its Referer), else the store list."""
    return _referer(request) or STORES


def _referer(request: Request) -> str | None:
    referer = urlsplit(request.headers.get("referer") or "")
    if referer.netloc and referer.netloc == request.headers.get("host"):
        return local_path(f"{referer.path}?{referer.query}" if referer.query else referer.path)
    return None


# Each part of the Console and its list, for an error page's way back when no other page sent the request.
LISTS = (
    (f"{PREFIX}/datasets", "your datasets"),
    (f"{PREFIX}/request-queues", "your request queues"),
    (f"{PREFIX}/runs", "your runs"),
    (f"{PREFIX}/account", "your account"),
)


def way_back(request: Request) -> tuple[str, str]:
    """Where an error page leads, and the link's words: the page the request was sent from (a form's), unless
    that is the page that failed; else the list of the part of the Console the request was for."""
    came = _referer(request)
    if came is not None and came != here(request):
        return came, "Back"
    path = request.url.path
    for prefix, label in LISTS:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix, f"Back to {label}"
    return STORES, "Back to your stores"


def same_origin(request: Request) -> bool:
    """Whether a form post came from this site (SameSite cookies aside, a second guard against CSRF)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True  # browsers send Origin on form posts; tools that send none are not cross-site forms
    return urlsplit(origin).netloc == request.headers.get("host")


def whole(value: str | None) -> int:
    return int(value) if value and is_digits(value) and len(value) < 10 else 0


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def when(ms: int) -> str:
    return iso(ms).replace("T", " ")[:19] + " UTC"


# The sorts a list page offers, and the direction each starts in when chosen (names A to Z, the rest largest
# or newest first).
SORT_STARTS_DESC = {"createdAt": True, "name": False, "size": True, "modifiedAt": True}
MAX_SEARCH = 100


def listing(request: Request, per_page: int) -> Listing:
    """What a list page of storages of any kind asks the services' page() for, from its query: the ownership
    tab, the "Include unnamed" box, the search, the sort and its direction, and the offset. The storage layer
    sorts and searches (service/stores.py); an unknown sort is refused there as bad input."""
    query = request.query_params
    order = query.get("sort") or "createdAt"
    desc = query.get("desc")
    return Listing(
        offset=whole(query.get("offset")),
        limit=per_page,
        desc=SORT_STARTS_DESC.get(order, True) if desc not in ("0", "1") else desc == "1",
        unnamed=query.get("unnamed") == "1",
        ownership=query.get("ownership") or None,
        order=order,
        search=(query.get("search") or "").strip()[:MAX_SEARCH] or None,
    )


def list_query(args: Listing) -> dict[str, str]:
    """The query naming a list page as listing() read it, without its offset and defaults: for the links of
    its tabs, sort headers and pager, which keep every other choice."""
    query = {
        "ownership": args.ownership or "",
        "search": args.search or "",
        "sort": args.order if args.order and args.order != "createdAt" else "",
        "desc": "" if args.desc == SORT_STARTS_DESC.get(args.order or "", True) else str(int(args.desc)),
        "unnamed": "1" if args.unnamed else "",
    }
    return {name: value for name, value in query.items() if value}
