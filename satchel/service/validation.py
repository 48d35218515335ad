"""What a record key, a store name and a store reference may be."""

from __future__ import annotations

import re
from typing import Any

from satchel.errors import InvalidRequest

KEY_RE = re.compile(r"[a-zA-Z0-9!\-_.'()]{1,256}")
NAME_RE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
MAX_NAME = 63
# How deeply a stored JSON value (a store's schema) may nest. The JSON encoder stops at 255 levels, and a
# schema is sent back inside a few more ({"data": {"items": [...]}}): one that deep would fail every answer
# that shows it. Real schemas are a handful of levels deep.
MAX_JSON_DEPTH = 64


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


def check_name(name: str) -> str:
    if NAME_RE.fullmatch(name) is None:
        if len(name) > MAX_NAME:
            detail = f"it is {len(name)} characters long (the limit is {MAX_NAME})"
        else:
            detail = "use only letters, digits and hyphens, starting and ending with a letter or digit"
        raise InvalidRequest(f"Key-value store name {name!r} is not valid: {detail}.", type="invalid-value")
    return name


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
