"""The `satchel` command. Each subcommand is imported only when it runs (or `--help` lists it): the server's
modules take over a second to load, which `satchel kv get` or `satchel run` need not pay.

The commands live in serve_command.py (`serve`, which runs bootstrap.py first), manage_commands.py
(users, tokens, migrate), store_commands.py (share, signing keys, import, export), kv_commands.py
and kv_copy.py, run_command.py, backup/ and transfer_command.py.
"""

from __future__ import annotations

import importlib

import click

# name: (module, attribute), in the order `satchel --help` lists them
COMMANDS = {
    "serve": ("satchel.serve_command", "serve"),
    "users": ("satchel.manage_commands", "users"),
    "tokens": ("satchel.manage_commands", "tokens"),
    "migrate": ("satchel.manage_commands", "migrate"),
    "share": ("satchel.store_commands", "share"),
    "rotate-signing-key": ("satchel.store_commands", "rotate_signing_key"),
    "public-url": ("satchel.store_commands", "print_public_url"),
    "import": ("satchel.store_commands", "import_folder"),
    "export": ("satchel.store_commands", "export_store"),
    "kv": ("satchel.kv_commands", "kv"),
    "run": ("satchel.run_command", "run_command"),
    "backup": ("satchel.backup.commands", "backup"),
    "restore": ("satchel.backup.commands", "restore"),
    "transfer": ("satchel.transfer_command", "transfer_command"),
}


class LazyCommands(click.Group):
    """A group whose commands are found in COMMANDS and imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command), (cmd_name, command)
        assert command.name == cmd_name, (cmd_name, command.name)
        return command


@click.group(cls=LazyCommands)
@click.version_option(package_name="satchel")
def main() -> None:
    """Satchel: a self-hosted key-value store speaking the Apify API v2."""


if __name__ == "__main__":
    main()
