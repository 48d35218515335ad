"""Every setting is documented (the whole table in docs/settings.md) and every endpoint in the README."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from satchel.api.routing import ROUTES
from satchel.settings import Settings

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def _variables() -> list[str]:
    """Every SATCHEL_* variable: top-level settings, and each engine block's fields as BLOCK__FIELD."""
    found = []
    for name, field in Settings.model_fields.items():
        block = field.annotation
        if isinstance(block, type) and issubclass(block, BaseModel):
            found += [f"SATCHEL_{name}__{inner}".upper() for inner in block.model_fields]
        else:
            found.append(f"SATCHEL_{name.upper()}")
    return found


def test_every_setting_is_in_the_settings_doc() -> None:
    """The README shows the common settings and links the whole table (kept current by test_settings_doc)."""
    variables = _variables()
    assert "SATCHEL_POSTGRES__POOL_MAX" in variables
    table = (ROOT / "docs" / "settings.md").read_text()
    assert [v for v in variables if f"`{v}`" not in table] == []
    assert "(docs/settings.md)" in README


def test_every_endpoint_is_in_the_readme() -> None:
    """Each route of the table by its path; routes made from others (a run's storages, `/v2/actors/...`) by
    the path they are documented under."""
    templates = [(route.derived_from or route.template).replace("{recordKey}", "{key}") for route in ROUTES]
    missing = [template for template in templates if f"`{template}`" not in README]
    assert missing == []
