"""Every setting is documented (the whole table in docs/settings.md) and every endpoint in the README; the
README's commands are written as `--help` shows them."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import click
from pydantic import BaseModel

from satchel.api.routing import ROUTES
from satchel.cli import main
from satchel.serve_command import serve
from satchel.setting_flags import FLAGS, settings_fields
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


# Given to every command that touches stored data, or that may work on a server: said once in the README.
SHARED_OPTIONS = {"--data-dir", "--database", "--blob-store", "--url", "--token", "--help"}


def _command(words: list[str]) -> click.Command:
    command: click.Command = main
    context = click.Context(main)
    for word in words:
        assert isinstance(command, click.Group)
        found = command.get_command(context, word)
        if found is None:
            break
        command = found
    return command


def test_the_readme_commands_show_their_real_usage() -> None:
    """Each row of the README's command table names the command's arguments and every option of its own:
    `tokens create NAME` lacked its --name."""
    rows = re.findall(r"^\| `satchel ([^`]+)` \|", README, re.MULTILINE)
    assert len(rows) >= 12
    for row in rows:
        usage = row.replace("\\|", "|")
        words = usage.split()
        path = [w for w in words if re.fullmatch(r"[a-z][a-z-]*", w)]
        command = _command(path)
        options = {o for param in command.params if isinstance(param, click.Option) for o in param.opts}
        given = set(re.findall(r"--[a-z][a-z-]*", usage))
        assert given <= options, (row, given - options)
        assert options - SHARED_OPTIONS <= given, (row, options - SHARED_OPTIONS - given)
        values = re.sub(r"\[?--[a-z-]+(?:\|--[a-z-]+)*(?: [^\]\s]+)?\]?", "", usage).split()[len(path) :]
        arguments = [param for param in command.params if isinstance(param, click.Argument)]
        assert len(values) == len(arguments), (row, values, [a.name for a in arguments])


def test_the_serve_synopsis_spells_values_as_help_does() -> None:
    """`[--rate-limit on|off]` in the README, BOOLEAN in `--help`: they now say the same."""
    synopsis = re.search(r"`satchel serve (\[[^`]+)` runs the API server", README)
    assert synopsis is not None
    help_text = serve.get_help(click.Context(serve))
    for flag, value in re.findall(r"\[(--[a-z-]+) ([^\]]+)\]", synopsis.group(1).replace("\n", " ")):
        assert flag in FLAGS.values(), flag
        if "|" in value:  # a spelling of the values, not a placeholder such as URL
            assert f"{flag} {value} " in help_text, (flag, value)


def test_a_flag_with_choices_explains_each_in_its_help() -> None:
    """--durability's help stopped after its "process" sentence and never said what "power" does."""
    help_text = " ".join(serve.get_help(click.Context(serve)).split())
    for name, field in settings_fields():
        if typing.get_origin(field.annotation) is typing.Literal:
            flag = FLAGS[name]
            text = help_text.split(f"{flag} [", 1)[1].split(" --", 1)[0]
            for choice in typing.get_args(field.annotation):
                assert f'"{choice}"' in text or f" {choice}" in text.split("]", 1)[1], (flag, choice, text)
