"""Every setting as a `satchel serve` flag, made from the settings model: a new setting gets its flag (and its
row in docs/settings.md) with nothing more written.

`--name-of-setting` for a setting, `--block-name` for a setting of an engine block (`--postgres-pool-max`).
The admin token has none: a flag's value shows in the process list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from satchel.settings import Settings

T = TypeVar("T")
NO_FLAG = frozenset(("token",))


def settings_fields() -> Iterator[tuple[str, FieldInfo]]:
    """Every setting by its dotted name (`postgres.pool_max` for an engine block's), with its field."""
    for name, field in Settings.model_fields.items():
        block = field.annotation
        if isinstance(block, type) and issubclass(block, BaseModel):
            for inner, inner_field in block.model_fields.items():
                yield f"{name}.{inner}", inner_field
        else:
            yield name, field


FLAGS = {
    name: "--" + name.replace(".", "-").replace("_", "-")
    for name, _ in settings_fields()
    if name not in NO_FLAG
}


def setting_options(command: Callable[..., T]) -> Callable[..., T]:
    """A click option for every setting that has a flag; the command gets them as keyword arguments (None
    when not given), for `flag_values`."""
    fields = dict(settings_fields())
    for name in reversed(FLAGS):
        field = fields[name]
        option = click.option(
            FLAGS[name],
            name.replace(".", "__"),
            type=_click_type(field.annotation),
            default=None,
            help=_first_sentence(field.description or ""),
            # The README's spelling, where click's own is BOOLEAN (it takes true/false, yes/no, 1/0 too).
            metavar="on|off" if field.annotation is bool else None,
        )
        command = option(command)
    return command


def flag_values(options: dict[str, Any]) -> dict[str, Any]:
    """The flags given, as keyword arguments of Settings (an engine block's as a dict of what was given)."""
    values: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        block, _, inner = key.partition("__")
        if inner:
            values.setdefault(block, {})[inner] = value
        else:
            values[key] = value
    return values


def _click_type(annotation: Any) -> click.ParamType[Any, Any]:
    if annotation is bool:
        return click.BOOL  # on/off, true/false, yes/no, 1/0
    if get_origin(annotation) is Literal:
        return click.Choice([str(choice) for choice in get_args(annotation)])
    if annotation is Path:
        return click.Path(path_type=Path)
    if annotation is int:
        return click.INT
    if annotation is float:
        return click.FLOAT
    return click.STRING


def _first_sentence(text: str) -> str:
    words = " ".join(text.split())
    end = words.find(". ")
    return words if end < 0 else words[: end + 1]
