"""What a record key, a store name, a store reference and the other fields callers write may be.

Every field a caller writes is bounded here, so nothing stored is larger than the answers that show it can
carry (a store list of 1,000 stores repeats each one's title), and no refusal echoes a caller's value whole.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import orjson

from satchel.errors import InvalidRequest

KEY_RE = re.compile(r"[a-zA-Z0-9!\-_.'()]{1,256}")
NAME_RE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
MAX_NAME = 63
MEMORY_RANGE = (128, 32768)  # a run's memory, in megabytes: what the server takes, and `satchel run` gives
# What is kept of a run's log, and what one append may add: a crawl's whole output, not a flood's.
MAX_LOG_BYTES = 10 * 2**20
MAX_LOG_APPEND = 2**20
# How deeply a stored JSON value (a store's schema) may nest. The JSON encoder stops at 255 levels, and a
# schema is sent back inside a few more ({"data": {"items": [...]}}): one that deep would fail every answer
# that shows it. Real schemas are a handful of levels deep.
MAX_JSON_DEPTH = 64
MAX_TITLE = 256  # characters; a title is a line of display text
# A schema names a few collections (a key or key prefix, content types, a JSON schema each): a few KiB.
MAX_SCHEMA_BYTES = 64 * 1024
MAX_USERNAME = 64  # as users are made (service/users.py)
SHOWN = 80  # how much of a refused value an error message quotes back


def is_digits(text: str) -> bool:
    """Only the ASCII digits 0-9: `str.isdigit` also takes `²` and other digits `int` refuses."""
    return text.isascii() and text.isdigit()


def check_key(key: str) -> str:
    if KEY_RE.fullmatch(key) is None or key in (".", ".."):
        if not key:
            detail = "it is empty"
        elif len(key) > 256:
            detail = f"it is {len(key)} characters long (the limit is 256)"
        elif key in (".", ".."):
            detail = f"{key!r} cannot be carried in a URL path"
        else:
            detail = "it may contain only a-z, A-Z, 0-9 and the characters !-_.'()"
        raise InvalidRequest(f"Record key is not valid: {detail}.", type="invalid-record-key")
    return key


def check_name(name: str, noun: str = "key-value store") -> str:
    if NAME_RE.fullmatch(name) is None:
        if len(name) > MAX_NAME:
            detail = f"it is {len(name)} characters long (the limit is {MAX_NAME})"
        else:
            detail = "use only letters, digits and hyphens, starting and ending with a letter or digit"
        raise InvalidRequest(
            f"{noun[0].upper()}{noun[1:]} name {shown(name)} is not valid: {detail}.", type="invalid-value"
        )
    return name


# Embeddings, overrides and isolates of the text direction: a title holding them shows its characters in
# another order than they are, in the Console and in every client's listing.
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_title(title: Any) -> str | None:
    """A store's title: null, or one line of at most MAX_TITLE characters."""
    if title is None:
        return None
    if not isinstance(title, str):
        raise InvalidRequest("Field `title` must be a string or null.", type="invalid-value")
    if len(title) > MAX_TITLE:
        raise InvalidRequest(
            f"Field `title` is {len(title)} characters long (the limit is {MAX_TITLE}).", type="invalid-value"
        )
    if any(unicodedata.category(c) in ("Cc", "Cs") or c in DIRECTION_CONTROLS for c in title):
        raise InvalidRequest(
            "Field `title` may not contain control characters (text direction controls included).",
            type="invalid-value",
        )
    return title


def check_schema(schema: Any) -> str | None:
    """A store's schema, as the JSON text kept for it: null, or an object of at most MAX_SCHEMA_BYTES."""
    if schema is None:
        return None
    if not isinstance(schema, dict):
        raise InvalidRequest("The store schema must be a JSON object.", type="invalid-value")
    check_depth(schema, "The store schema")
    text = orjson.dumps(schema)
    if len(text) > MAX_SCHEMA_BYTES:
        raise InvalidRequest(
            f"The store schema is {len(text)} bytes as JSON (the limit is {MAX_SCHEMA_BYTES}).",
            type="invalid-value",
        )
    return text.decode()


def check_username(username: str) -> str:
    """A username a caller names (to share with): 1 to MAX_USERNAME characters, as no longer one can exist."""
    if not username or len(username) > MAX_USERNAME:
        raise InvalidRequest(
            f"A username is 1 to {MAX_USERNAME} characters long; this one has {len(username)}.",
            type="invalid-value",
        )
    return username


def shown(value: str) -> str:
    """A caller's value quoted in a message, cut to SHOWN characters: an error never echoes a megabyte."""
    return repr(value) if len(value) <= SHOWN else repr(value[:SHOWN]) + f"... ({len(value)} characters)"


def split_reference(ref: str) -> tuple[str | None, str | None, str | None]:
    """Read a store reference as (id, username, name): an id, `username~name` or `~name`.

    `/` is accepted as the separator too, as the clients turn it into `~` but a hand-written URL may not.
    """
    sep = "~" if "~" in ref else ("/" if "/" in ref else None)
    if sep is None:
        return ref, None, None
    username, _, name = ref.partition(sep)
    return None, username, name


def check_depth(value: Any, what: str) -> Any:
    """Refuse a JSON value nested deeper than MAX_JSON_DEPTH (walked without recursion: it may be deep)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InvalidRequest(
                    f"{what} nests deeper than {MAX_JSON_DEPTH} levels.", type="invalid-value"
                )
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value
