"""docs/settings.md, made from the settings model: `python -m satchel.settings_doc` writes it, and a test
fails when the file differs from what this makes (a setting added, changed or documented anew).

Each row comes from one field of Settings (and of its engine blocks): the name in a config file, the
`satchel serve` flag that sets it (setting_flags.py), the environment variable, the default and the field's
docstring.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from satchel.setting_flags import FLAGS, settings_fields
from satchel.settings import CONFIG_VARIABLE, GIB, KIB, MIB

DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
INTRO = f"""# Settings

<!-- Made by `python -m satchel.settings_doc` from satchel/settings.py; edit the model, not this file. -->

Satchel reads each setting from, in order of precedence:

1. a `satchel serve` flag (every setting has one but `token`, whose value would show in the process list);
2. an environment variable, `SATCHEL_` and the setting's name in capitals (`SATCHEL_POSTGRES__POOL_MAX`
   for a setting of an engine block);
3. a TOML config file named by `satchel serve --config FILE` or `{CONFIG_VARIABLE}` (the other commands,
   such as `satchel users`, read `{CONFIG_VARIABLE}` too);
4. the default.

The config file holds the settings by name, the engine blocks (`postgres`, `s3`) as tables. A name
Satchel does not know is an error, so a misspelt setting is not silently ignored:

```toml
port = 8080
data_dir = "/var/lib/satchel"
log_format = "json"
rate_limit_records_per_second = 200

[postgres]
pool_max = 20
```

"""
HEADER = "| setting | flag | variable | default | description |\n|---|---|---|---|---|\n"


def render() -> str:
    rows = []
    for name, field in settings_fields():
        variable = "SATCHEL_" + name.replace(".", "__").upper()
        rows.append(_row(name, FLAGS.get(name, ""), variable, _default(name, field), _text(field)))
    return INTRO + HEADER + "".join(rows)


def _row(setting: str, flag: str, variable: str, default: str, description: str) -> str:
    cells = [f"`{setting}`", f"`{flag}`" if flag else "", f"`{variable}`" if variable else "", default]
    return "| " + " | ".join([*cells, description.replace("|", "\\|")]) + " |\n"


def _text(field: FieldInfo) -> str:
    return " ".join((field.description or "").split())


def _default(name: str, field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if value == "":
        return "empty"
    if isinstance(value, Path) and not value.is_absolute():
        return f"`./{value}`"
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, int) and name.endswith("_bytes"):
        for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
            if value >= size and value % size == 0:
                return f"{value // size} {unit}"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def main() -> None:
    """Write docs/settings.md (or, with --check, exit 1 if it is out of date)."""
    text = render()
    if "--check" in sys.argv[1:]:
        if not DOC.exists() or DOC.read_text() != text:
            sys.exit(f"{DOC} is out of date: run `python -m satchel.settings_doc`.")
        return
    DOC.write_text(text)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
