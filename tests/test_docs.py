"""Every setting and every endpoint is documented in the README."""

from __future__ import annotations

from pathlib import Path

from satchel.api.routing import ROUTES
from satchel.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    missing = [name for name in Settings.model_fields if f"`SATCHEL_{name.upper()}`" not in README]
    assert missing == []


def test_every_endpoint_is_in_the_readme() -> None:
    missing = [route for route in ROUTES if f"`{route.replace('{recordKey}', '{key}')}`" not in README]
    assert missing == []
