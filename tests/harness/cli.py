"""The `satchel` command line in a process of its own, as an operator runs it: one helper for every test; and
the same commands in this process, for the steps a test sets up with rather than tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from click.testing import CliRunner

from satchel.cli import main


def cli_command(*args: str, data_dir: Path | None = None) -> list[str]:
    """`python -m satchel ARGS [--data-dir DIR]` as an argument list (for a process a test starts itself)."""
    command = [sys.executable, "-m", "satchel", *args]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    return command


def run_cli(
    *args: str,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    ok: bool | None = True,
    timeout: float = 60,
    cwd: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
    drop: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run one command to its end; `env` is added to this process's environment, less the variables whose
    names start with one of `drop` (("SATCHEL_",): only the defaults and what the test gives).

    `ok=True` asserts it succeeded (and printed no traceback), `ok=False` that it failed, `ok=None` leaves
    the outcome to the caller.
    """
    done = subprocess.run(
        cli_command(*args, data_dir=data_dir),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**{k: v for k, v in os.environ.items() if not (drop and k.startswith(drop))}, **(env or {})},
        cwd=cwd,
        preexec_fn=preexec_fn,
    )
    if ok is not None:
        assert (done.returncode == 0) == ok, (args, done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def run_cli_here(*args: str, data_dir: Path | None = None) -> str:
    """`satchel ARGS [--data-dir DIR]` in this process (click's runner): the same command, options and output,
    without the second or so a Python of its own takes to start, for a step that sets a test up (a user, a
    share) where the command line is not what is tested. On a thread of its own, since a Playwright page may
    keep an event loop running on this one. Its stdout, once it has succeeded."""
    argv = [*args, *(["--data-dir", str(data_dir)] if data_dir is not None else [])]
    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(CliRunner().invoke, main, argv).result()
    assert done.exception is None, (args, done.exit_code, done.output, done.exception)
    assert done.exit_code == 0, (args, done.exit_code, done.output)
    return done.stdout


def new_user(data_dir: Path, name: str) -> str:
    """A user made with the CLI (in this process); their token."""
    return run_cli_here("users", "create", name, data_dir=data_dir).split("API token: ")[1].strip()
