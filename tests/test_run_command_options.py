"""`satchel run` options the other tests leave out: `--url` and `--token` given on the command line win over
SATCHEL_URL and SATCHEL_TOKEN, and without `--actor` the Actor is named after the current folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from apify_client import ApifyClient

from tests.conftest import Server
from tests.harness.cli import cli_command


def satchel_run(
    server: Server, cwd: Path, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("SATCHEL_", "APIFY_"))}
    return subprocess.run(
        cli_command("run", *args),
        env=clean | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_id(stderr: str) -> str:
    first = stderr.splitlines()[0]
    assert first.startswith("satchel run: run "), stderr
    return first.split()[3]


def test_url_and_token_options_win_over_the_environment(server: Server, tmp_path: Path) -> None:
    wrong = {"SATCHEL_URL": "http://127.0.0.1:9", "SATCHEL_TOKEN": "apify_api_" + "w" * 36}
    given = ("--url", server.base_url, "--token", server.token)
    done = satchel_run(server, tmp_path, *given, "--actor", "opts-actor", "--", "true", env=wrong)
    assert done.returncode == 0, done.stderr
    run = ApifyClient(server.token, api_url=server.base_url).run(run_id(done.stderr)).get()
    assert run is not None
    assert run.status == "SUCCEEDED"
    refused = satchel_run(server, tmp_path, "--actor", "opts-actor", "--", "true", env=wrong)
    assert refused.returncode != 0


def test_the_actor_is_named_after_the_folder(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "My Crawler_2"
    folder.mkdir()
    env = {"SATCHEL_URL": server.base_url, "SATCHEL_TOKEN": server.token}
    done = satchel_run(server, folder, "--", "true", env=env)
    assert done.returncode == 0, done.stderr
    assert "of Actor ~My-Crawler-2 " in done.stderr.splitlines()[0]
    client = ApifyClient(server.token, api_url=server.base_url)
    last = client.actor("~My-Crawler-2").last_run().get()
    assert last is not None
    assert last.id == run_id(done.stderr)
