"""What a record key, a store name and a store reference may be."""

from __future__ import annotations

import re

from satchel.errors import InvalidRequest

KEY_RE = re.compile(r"[a-zA-Z0-9!\-_.'()]{1,256}")
NAME_RE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
MAX_NAME = 63


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
