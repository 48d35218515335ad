"""Conditional requests and Range on records, as RFC 9110 defines them: reading the headers, judging them.

A record's ETag is the SHA-256 of its body as stored; the stored bytes are what a GET sends, so the tag is
strong. A record stored with a Content-Encoding and sent decoded (the client does not accept the encoding)
is another representation with the same content: it goes out with the weak tag `W/"..."`, which a cache may
revalidate (If-None-Match compares weakly) but which never satisfies If-Match or If-Range (they compare
strongly).

Range is served for records stored without Content-Encoding only: of a compressed record only the encoded
bytes are stored, and a range of them is of no use to a client that wants the content, so such records say
`Accept-Ranges: none` and a Range on them is ignored (200, whole). A request for several ranges is served
whole (200), which RFC 9110 allows, as is a Range header this server cannot read (another unit, bad syntax);
a range that starts past the end is refused with 416 and `Content-Range: bytes */SIZE`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from enum import IntEnum

from starlette.types import Scope

from satchel.service.validation import is_digits
from satchel.storage.conditions import WriteCondition

CONDITION_HEADERS = frozenset({b"if-match", b"if-none-match", b"if-modified-since", b"range", b"if-range"})
BIG = 10**18  # stands for a position too long to be a number worth reading; larger than any record


@dataclass(slots=True)
class Conditions:
    """The request's conditional and Range headers (several lines of one are joined with commas)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    range: str | None = None
    if_range: str | None = None


def conditions(scope: Scope) -> Conditions | None:
    """The request's conditional headers, or None without any (the usual case): one pass over the list."""
    found: Conditions | None = None
    for name, value in scope["headers"]:
        if name in CONDITION_HEADERS:
            found = found or Conditions()
            attr = name.decode().replace("-", "_")
            text = value.decode("latin-1")
            before = getattr(found, attr)
            setattr(found, attr, text if before is None else f"{before}, {text}")
    return found


def tags(value: str, *, weak: bool) -> frozenset[str]:
    """The entity tags of an If-Match / If-None-Match value, bare (without quotes): {"*"} for `*`.

    With weak=False (strong comparison, If-Match) a weak tag is left out: it can match nothing. An unquoted
    tag is taken as it is, for clients that forget the quotes.
    """
    if value.strip() == "*":
        return frozenset({"*"})
    found = set()
    for part in value.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            if not weak:
                continue
            tag = tag[2:]
        if len(tag) >= 2 and tag[0] == tag[-1] == '"':
            tag = tag[1:-1]
        if tag:
            found.add(tag)
    return frozenset(found)


def write_condition(found: Conditions | None) -> WriteCondition | None:
    """What a PUT or DELETE requires of the current record, from its If-Match and If-None-Match."""
    if found is None or (found.if_match is None and found.if_none_match is None):
        return None
    return WriteCondition(
        if_match=None if found.if_match is None else tags(found.if_match, weak=False),
        if_none_match=None if found.if_none_match is None else tags(found.if_none_match, weak=True),
    )


@functools.lru_cache(maxsize=4096)
def http_date(seconds: int) -> str:
    """An HTTP date (IMF-fixdate), as Last-Modified writes it."""
    return formatdate(seconds, usegmt=True)


def _seconds(value: str) -> int | None:
    """An HTTP date as epoch seconds; None when it is not one (the header is then ignored)."""
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class Verdict(IntEnum):
    """What the preconditions of a GET or HEAD decide, before Range is looked at: go on, or this status."""

    PROCEED = 0
    NOT_MODIFIED = 304
    FAILED = 412


def read_verdict(found: Conditions, etag: str, *, weak: bool, modified_at: int) -> Verdict:
    """RFC 9110 section 13.2.2, for GET and HEAD: If-Match (strong), then If-None-Match (weak), and only
    without If-None-Match, If-Modified-Since (Last-Modified has whole seconds: a change within the second
    named is not newer)."""
    if found.if_match is not None:
        wanted = tags(found.if_match, weak=False)
        if "*" not in wanted and (weak or etag not in wanted):
            return Verdict.FAILED
    if found.if_none_match is not None:
        unwanted = tags(found.if_none_match, weak=True)
        return Verdict.NOT_MODIFIED if "*" in unwanted or etag in unwanted else Verdict.PROCEED
    if found.if_modified_since is not None:
        since = _seconds(found.if_modified_since)
        if since is not None and modified_at // 1000 <= since:
            return Verdict.NOT_MODIFIED
    return Verdict.PROCEED


class Unsatisfiable(Exception):
    """The Range names no byte of the record (416)."""


def byte_range(found: Conditions, size: int, etag: str, last_modified: str) -> tuple[int, int] | None:
    """The one range (start, end exclusive) to send, or None to send the whole body; Unsatisfiable for 416.

    If-Range with the current ETag (or the exact Last-Modified) lets the Range apply; anything else in it
    means the client's copy is stale, and the whole body goes out.
    """
    if found.range is None:
        return None
    if found.if_range is not None:
        validator = found.if_range.strip()
        if validator not in (f'"{etag}"', last_modified):
            return None
    unit, _, spec = found.range.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # another unit (ignored), or several ranges (sent whole)
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first or last) or (first and not is_digits(first)) or (last and not is_digits(last)):
        return None
    if not first:  # the last n bytes
        suffix = _number(last)
        if size == 0:
            return None  # nothing to take a suffix of: the empty body, whole
        if suffix == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size
    start = _number(first)
    end = size if not last else _number(last) + 1
    if last and end <= start:
        return None  # first > last: not a valid range, ignored
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size)


def _number(digits: str) -> int:
    # Python refuses int() of more than 4300 digits; anything past 18 is beyond every record anyway.
    return int(digits) if len(digits) <= 18 else BIG
