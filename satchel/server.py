"""The one place a server is put together: storage from the settings, the services over it, the API and
the Console over those."""

from __future__ import annotations

from satchel.api.app import SatchelApp
from satchel.service.services import build_services_from
from satchel.settings import Settings


def create_app(settings: Settings | None = None) -> SatchelApp:
    """The ASGI application granian serves (as a factory, once per worker process)."""
    settings = settings or Settings()
    return SatchelApp(build_services_from(settings))
