"""Satchel: a self-hosted key-value store that speaks the Apify API v2 key-value store contract."""

from satchel.api.app import SatchelApp
from satchel.server import create_app
from satchel.settings import Settings

__all__ = ["SatchelApp", "Settings", "create_app"]
