"""What every Console page shares: reading forms, redirects, Console paths and the templates' filters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from satchel.clock import iso
from satchel.errors import InvalidRequest

PREFIX = "/console"
STORES = f"{PREFIX}/key-value-stores"
CHUNK = 256 * 1024


async def read_form(request: Request, *, files: int = 0, fields: int = 8) -> FormData:
    """The posted form; a malformed one is a 400 like any bad input, not a server error."""
    try:
        return await request.form(max_files=files, max_fields=fields)
    except (MultiPartException, HTTPException) as exc:
        raise InvalidRequest(f"The form could not be read: {getattr(exc, 'detail', None) or exc}.") from exc


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def upload_chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await file.read(CHUNK):
        yield chunk


async def one_chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"cache-control": "no-store"})


def store_path(ref: str) -> str:
    return f"{STORES}/{quote(ref, safe='~')}"


def record_path(ref: str, key: str) -> str:
    return f"{store_path(ref)}/records/{quote(key, safe='')}"


def local_path(value: str | None) -> str:
    """Where to go after signing in: only a path within the Console, never another site."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return STORES


def same_origin(request: Request) -> bool:
    """Whether a form post came from this site (SameSite cookies aside, a second guard against CSRF)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True  # browsers send Origin on form posts; tools that send none are not cross-site forms
    return urlsplit(origin).netloc == request.headers.get("host")


def whole(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 10 else 0


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def when(ms: int) -> str:
    return iso(ms).replace("T", " ")[:19] + " UTC"
