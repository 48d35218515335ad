"""Satchel: a self-hosted key-value store that speaks the Apify API v2 key-value store contract."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from satchel.api.app import SatchelApp
    from satchel.server import create_app
    from satchel.settings import Settings

__all__ = ["SatchelApp", "Settings", "create_app"]
# Imported when first asked for: a process that needs only part of the package (the one that writes for a
# server's workers) does not load the whole server.
_WHERE = {"SatchelApp": "satchel.api.app", "Settings": "satchel.settings", "create_app": "satchel.server"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'satchel' has no attribute {name!r}")
