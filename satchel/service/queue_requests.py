"""What clients send to request queues, read and checked: requests and their ids, cursors, clientKeys,
lockSecs, and JSON bodies up to 10 MiB decoded."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

import orjson

from satchel.clock import iso
from satchel.errors import InvalidRequest, TooLarge
from satchel.service.encoding import Decoder, normalize
from satchel.service.validation import check_depth, shown
from satchel.storage.rows import NewRequest, RequestRow

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # decoded; the clients send batches of up to 9 MiB
MAX_BATCH = 25
# An absolute URL: a scheme, then anything but control characters. The Apify SDK and Crawlee turn every
# request they read into one of theirs, which refuses a url without a scheme, so one such request stored
# would stop a crawl at its turn; it is refused when sent instead.
ABSOLUTE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\x00-\x1f\x7f]+")
MAX_HEAD = 1000
DEFAULT_HEAD = 100
MAX_LOCKED_HEAD = 25
MAX_LIST = 10_000
# Request bodies in one answer (list, head, locked head): past it the answer holds fewer requests than asked
# (one at least), as one request may be as large as a payload. Some 16,000 requests of 1 KiB.
PAGE_BYTES = 16 * 1024 * 1024
MAX_CLIENT_KEY = 32
MAX_LOCK_SECS = 7 * 24 * 3600
FILTERS = ("pending", "locked")
LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time an ISO string can carry
ID_STRIP = re.compile(r"[+/=]")
# Optional fields the clients read back with a type; anything else sent is kept as it came.
TYPED: dict[str, tuple[type, ...]] = {
    "method": (str,),
    "retryCount": (int,),
    "loadedUrl": (str,),
    "payload": (str, dict),
    "headers": (dict,),
    "userData": (dict,),
    "noRetry": (bool,),
    "errorMessages": (list,),
}
LOCK_FIELDS = ("lockExpiresAt", "lockByClient")
# What a request sent without them holds, as the clients' own examples add them (`uniqueKey` and `url` only).
# The reference requires `method` and `retryCount` on every request it shows, and the Apify SDK turns each
# request it reads (list, head, get) into a Crawlee Request, which refuses all five null: an Actor could not
# take one request from a queue seeded that way.
DEFAULTS: dict[str, Any] = {"method": "GET", "retryCount": 0, "headers": {}, "userData": {}, "noRetry": False}


def last_if_more(rows: Sequence[RequestRow], limit: int) -> str | None:
    """The last request's id when more may follow: the page is full, or was cut short by its bytes (clients
    follow the cursor, not the count)."""
    if rows and (len(rows) == limit or sum(len(row.body) for row in rows) >= PAGE_BYTES):
        return rows[-1].id
    return None


def request_id(key: str) -> str:
    """The SDK's `unique_key_to_request_id`: SHA-256, base64, without `+/=`, first 15 characters."""
    digest = base64.b64encode(sha256(key.encode("utf-8")).digest()).decode()
    return ID_STRIP.sub("", digest)[:15]


def client(key: str | None) -> str:
    """The clientKey as the engines keep it: "" for none."""
    if key is None:
        return ""
    if len(key) > MAX_CLIENT_KEY:
        raise InvalidRequest(f"Parameter `clientKey` must be 1 to {MAX_CLIENT_KEY} characters long.")
    return key


def parse_lock_secs(raw: str | None) -> float:
    if raw is None:
        raise InvalidRequest("Parameter `lockSecs` is required.")
    try:
        seconds = float(raw) if raw.isascii() and "_" not in raw else math.nan
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_LOCK_SECS:
        raise InvalidRequest(
            f"Parameter `lockSecs` must be a number of seconds above 0, at most {MAX_LOCK_SECS}."
        )
    return seconds


def batch_of(body: Any) -> list[Any]:
    if not isinstance(body, list):
        raise InvalidRequest("The request body must be a JSON array of requests.")
    if len(body) > MAX_BATCH:
        raise InvalidRequest(f"A batch takes at most {MAX_BATCH} requests; this one has {len(body)}.")
    return body


def unique_key(item: dict[str, Any]) -> str:
    key = item.get("uniqueKey")
    return key if isinstance(key, str) else str(item.get("url"))


def parse_request(body: Any, *, path_id: str | None = None, where: str = "The request") -> NewRequest:
    """A request as sent, checked, with its id derived from its uniqueKey (the url when it has none).

    Fills `id`, `uniqueKey` and the DEFAULTS in, and writes handledAt in UTC with Z; drops the lock's fields,
    which a request read while locked carries (and the clients send such a read back as an update); everything
    else is kept as sent.
    """
    if not isinstance(body, dict):
        raise InvalidRequest(f"{where} must be a JSON object.")
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"{where}: field `url` must be a non-empty string.")
    if not ABSOLUTE_URL.fullmatch(url):
        raise InvalidRequest(
            f"{where}: field `url` must be an absolute URL, such as https://example.com/page"
            f" ({url[:80]!r} is not).",
            type="invalid-value",
        )
    key = body.get("uniqueKey")
    if key is None:
        key = url
    if not isinstance(key, str) or not key:
        raise InvalidRequest(f"{where}: field `uniqueKey` must be a non-empty string.")
    rid = request_id(key)
    sent_id = body.get("id")
    if (sent_id is not None and sent_id != rid) or (path_id is not None and path_id != rid):
        raise InvalidRequest(
            f"{where}: its id does not match its uniqueKey (the id of {shown(key)} is {rid})."
        )
    for field, types in TYPED.items():
        value = body.get(field)
        # A bool is an int to Python, but not a retryCount to the clients.
        wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if value is not None and wrong:
            raise InvalidRequest(f"{where}: field `{field}` has the wrong type.", type="invalid-value")
    if isinstance(body.get("retryCount"), int) and body["retryCount"] < 0:
        raise InvalidRequest(f"{where}: field `retryCount` must not be negative.", type="invalid-value")
    # Kept within what every answer that shows it can encode (a list wraps it in three more levels).
    check_depth(body, where)
    handled = _handled_at(body.get("handledAt"), where)
    stored = {"id": rid, **body, "uniqueKey": key}
    for field, default in DEFAULTS.items():
        if stored.get(field) is None:
            stored[field] = default
    for field in LOCK_FIELDS:  # the server's to show while a lock is held, not a client's to store
        stored.pop(field, None)
    if handled is not None and not str(body["handledAt"]).endswith("Z"):
        stored["handledAt"] = iso(handled)
    return NewRequest(rid, orjson.dumps(stored), handled)


def _handled_at(value: Any, where: str) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidRequest(
            f"{where}: field `handledAt` must be an ISO 8601 date and time.", type="invalid-value"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ms = math.floor(moment.timestamp() * 1000)
    # Shown back in UTC with a four-digit year: year 1 at +14:00 is year 0 in UTC, and once failed every read.
    if not 0 <= ms <= LAST_MS:
        raise InvalidRequest(
            f"{where}: field `handledAt` must be a time from 1970 to 9999 (UTC).", type="invalid-value"
        )
    return ms


def read_cursor(cursor: str) -> str:
    """The last id of the previous page, from a cursor `make_cursor` wrote."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("requestId"), str):
        raise InvalidRequest("Parameter `cursor` is not a cursor this API gave out.")
    return data["requestId"]  # type: ignore[no-any-return]


def make_cursor(last_id: str) -> str:
    """An opaque cursor, as the hosted API writes them: base64 of `{"requestId": ...}` without padding."""
    return base64.urlsafe_b64encode(orjson.dumps({"requestId": last_id})).decode().rstrip("=")


async def read_payload(
    chunks: AsyncIterator[bytes], content_encoding: str | None, declared: int | None
) -> Any:
    """A JSON body decoded per its Content-Encoding, refused (413) once past MAX_PAYLOAD_BYTES either way."""
    if declared is not None and declared > MAX_PAYLOAD_BYTES:
        raise _too_large()
    encoding = normalize(content_encoding)
    decoder = Decoder(encoding) if encoding else None
    parts: list[bytes] = []
    sent = size = 0
    async for chunk in chunks:
        sent += len(chunk)
        if sent > MAX_PAYLOAD_BYTES:
            raise _too_large()
        # Checked piece by piece: one chunk of a few KiB may decode to gigabytes.
        for piece in decoder.feed(chunk) if decoder else (chunk,):
            size += len(piece)
            if size > MAX_PAYLOAD_BYTES:
                raise _too_large()
            parts.append(piece)
    for piece in decoder.finish() if decoder else ():
        size += len(piece)
        if size > MAX_PAYLOAD_BYTES:
            raise _too_large()
        parts.append(piece)
    raw = b"".join(parts)
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from exc


def _too_large() -> TooLarge:
    # Made where it is raised, never kept in a local: an exception held by the frame it is raised from makes
    # a cycle (exception, traceback, frame) that keeps the decoded body until the garbage collector runs.
    return TooLarge(
        f"The body is larger than {MAX_PAYLOAD_BYTES} bytes (decoded); send fewer requests at once.",
        type="request-too-large",
    )
