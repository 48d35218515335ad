"""Crawlee's local layout of key-value stores, and Satchel's own names for keys it cannot carry."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import secrets
from urllib.parse import quote

STORES_FOLDER = "key_value_stores"
METADATA = "__metadata__.json"
RECORD_METADATA = "." + METADATA
OWN_PREFIX = "~"  # Satchel's own names, for keys Crawlee's layout cannot name
OWN_METADATA = ".__satchel__.json"
NAME_MAX = 255  # bytes in one file name (Linux, macOS, Windows)
MAX_METADATA_BYTES = 64 * 1024  # a key, a content type and a few numbers
CHUNK = 1024 * 1024
DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer (the import hung).
READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# A store folder an export is writing, beside the one it becomes once whole: hidden, and no store's name
# (names have no dot), so that neither Crawlee nor an import takes it for a store.
PARTIAL = re.compile(r"\.(?P<store>[^/]+)\.partial-[0-9a-f]{8}")


def crawlee_name(key: str) -> str | None:
    """The file name Crawlee for Python gives the key's body, or None when its layout cannot carry the key."""
    name = quote(key, safe="")
    if name == METADATA or name.endswith(RECORD_METADATA):
        return None
    if len((name + RECORD_METADATA).encode()) > NAME_MAX:
        return None
    return name


def file_names(key: str) -> tuple[str, str]:
    """The names of the key's body and metadata files in an export."""
    name = crawlee_name(key)
    if name is not None:
        return name, name + RECORD_METADATA
    own = OWN_PREFIX + hashlib.sha256(key.encode()).hexdigest()
    return own, own + OWN_METADATA


def partial_name(store: str) -> str:
    """A new name for the folder an export of the store writes before it is renamed to the store's name."""
    return f".{store}.partial-{secrets.token_hex(4)}"


def guess_type(name: str) -> str:
    """A content type for a file of that name (text as UTF-8), application/octet-stream if none fits."""
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    textual = guessed.startswith("text/") or guessed == "application/json"
    return f"{guessed}; charset=utf-8" if textual else guessed
