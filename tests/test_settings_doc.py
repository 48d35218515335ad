"""Settings from flags, variables and a TOML file, in that order, and docs/settings.md made from the model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from satchel import settings_doc
from satchel.serve_command import serve
from satchel.setting_flags import flag_values, settings_fields
from satchel.settings import CONFIG_VARIABLE, MIB, ConfigFileError, Settings, load
from tests.harness.cli import cli_command

ROOT = Path(__file__).resolve().parent.parent


def test_the_settings_doc_is_made_from_the_model() -> None:
    """Fails when a setting is added, changed or described anew without `python -m satchel.settings_doc`."""
    assert (ROOT / "docs" / "settings.md").read_text() == settings_doc.render()


def test_the_doc_lists_every_setting_with_its_flag_and_variable() -> None:
    doc = settings_doc.render()
    for name, field in settings_fields():
        assert f"| `{name}` |" in doc
        assert field.description, f"{name} has no docstring"
    assert "| `port` | `--port` | `SATCHEL_PORT` | `8765` |" in doc
    assert "| `postgres.pool_max` | `--postgres-pool-max` | `SATCHEL_POSTGRES__POOL_MAX` | `10` |" in doc
    assert "| `max_record_bytes` | `--max-record-bytes` | `SATCHEL_MAX_RECORD_BYTES` | 4 GiB |" in doc
    assert "| `token` |  | `SATCHEL_TOKEN` |" in doc  # no flag: it would show in the process list
    assert "`satchel serve --config FILE`" in doc


def test_check_mode_fails_on_a_stale_doc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "settings.md"
    stale.write_text("# Settings\n")
    monkeypatch.setattr(settings_doc, "DOC", stale)
    monkeypatch.setattr(sys, "argv", ["settings_doc", "--check"])
    with pytest.raises(SystemExit, match="out of date"):
        settings_doc.main()
    monkeypatch.setattr(sys, "argv", ["settings_doc"])
    settings_doc.main()
    assert stale.read_text() == settings_doc.render()


def test_flags_then_variables_then_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text('port = 1111\nworkers = 3\nlog_format = "json"\n[postgres]\npool_max = 42\n')
    monkeypatch.setenv(CONFIG_VARIABLE, str(config))
    monkeypatch.setenv("SATCHEL_WORKERS", "5")
    monkeypatch.delenv("SATCHEL_PORT", raising=False)
    monkeypatch.delenv("SATCHEL_LOG_FORMAT", raising=False)
    monkeypatch.delenv("SATCHEL_POSTGRES__POOL_MAX", raising=False)
    settings = Settings(log_format="text")  # as a flag gives it
    assert settings.port == 1111  # the file's
    assert settings.workers == 5  # the variable's, over the file's
    assert settings.log_format == "text"  # the flag's, over the file's
    assert settings.postgres.pool_max == 42
    assert settings.postgres.pool_min == 2  # the default, beside the file's in the same table
    monkeypatch.delenv(CONFIG_VARIABLE)
    assert Settings().port == 8765


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot = 1\n", "unknown settings: prot"),
        ("[postgres]\npool_maxx = 1\n", "unknown settings: postgres.pool_maxx"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_a_bad_config_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text(text)
    monkeypatch.setenv(CONFIG_VARIABLE, str(config))
    with pytest.raises(ConfigFileError, match=message):
        Settings()


def test_flags_are_read_for_every_kind_of_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text(f"[s3]\ntimeout_seconds = 7\npart_bytes = {6 * MIB}\n")
    monkeypatch.setenv(CONFIG_VARIABLE, str(config))
    monkeypatch.delenv("SATCHEL_RATE_LIMIT", raising=False)
    args = [
        "--max-connections", "500", "--s3-timeout-seconds", "3", "--rate-limit", "off",
        "--durability", "power", "--data-dir", str(tmp_path), "--sweep-interval-seconds", "0.5",
    ]  # fmt: skip
    options = dict(serve.make_context("serve", args).params)
    assert options.pop("config") is None
    settings = Settings(**flag_values(options))
    assert settings.max_connections == 500
    assert settings.s3.timeout_seconds == 3  # the flag's, over the file's
    assert settings.s3.part_bytes == 6 * MIB  # the file's, beside the flag in the same block
    assert settings.rate_limit is False
    assert settings.durability == "power"
    assert settings.data_dir == tmp_path
    assert settings.sweep_interval_seconds == 0.5
    with pytest.raises(click.BadParameter):
        serve.make_context("serve", ["--durability", "sometimes"])


def test_every_setting_is_a_flag_of_serve(tmp_path: Path) -> None:
    """Flags over variables over the file, for a top-level setting and an engine block's; the server that
    starts reports what it was given (a bad value is refused with the setting's name)."""
    config = tmp_path / "satchel.toml"
    config.write_text("max_connections = 70\n[s3]\ntimeout_seconds = 7\n")
    refused = subprocess.run(
        cli_command(
            "serve", "--config", str(config), "--max-connections", "5", "--s3-timeout-seconds", "3",
            data_dir=tmp_path / "data",
        ),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "max_connections" in refused.stderr  # 5 is below its minimum: the flag was read, over the file
    assert "Traceback" not in refused.stderr


def test_serve_says_what_is_wrong_with_its_config_file(tmp_path: Path) -> None:
    config = tmp_path / "satchel.toml"
    config.write_text('port = "eighty"\n')
    done = subprocess.run(
        cli_command("serve", "--config", str(config), data_dir=tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "port" in done.stderr
    assert "Traceback" not in done.stderr
    missing = subprocess.run(
        cli_command("serve", "--config", str(tmp_path / "absent.toml"), data_dir=tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    assert "cannot be read" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("SATCHEL_PORT", "abc", "Setting port (SATCHEL_PORT): input should be a valid integer"),
        (
            "SATCHEL_RATE_LIMIT",
            "maybe",
            "Setting rate_limit (SATCHEL_RATE_LIMIT): input should be a valid boolean",
        ),
    ],
)
def test_a_bad_variable_is_named_in_one_line(tmp_path: Path, variable: str, value: str, said: str) -> None:
    """A value Satchel cannot use says which setting and variable, the rule and the value: no validation
    report from the settings library, whichever command reads the settings."""
    for args in (("serve",), ("users", "list")):
        done = subprocess.run(
            cli_command(*args, data_dir=tmp_path / "data"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, variable: value},
        )
        assert done.returncode == 1, done.stderr
        assert said in done.stderr
        assert f"(got '{value}')" in done.stderr
        assert "pydantic" not in done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("token", "said"),
    [
        ("short", "(it is 5 characters)"),
        ("apify_api_with a space in it", "(it holds ' ')"),
    ],
)
def test_an_admin_token_easy_to_guess_or_to_mangle_is_refused(tmp_path: Path, token: str, said: str) -> None:
    """SATCHEL_TOKEN opens everything: a short one is refused, as is one a URL or header would mangle, and the
    refusal does not echo it (error lines go to logs)."""
    done = subprocess.run(
        cli_command("serve", data_dir=tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SATCHEL_TOKEN": token},
    )
    assert done.returncode == 1, done.stderr
    assert "Setting token (SATCHEL_TOKEN): the admin token must be 20 to 200 letters" in done.stderr
    assert said in done.stderr
    assert token not in done.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_a_bad_value_names_where_it_came_from(tmp_path: Path) -> None:
    """The flag, the variable or the config file, whichever gave the value: a bad value in the file was
    reported under the variable's name, which the operator had never set."""
    config = tmp_path / "satchel.toml"
    config.write_text("port = 99999\n[postgres]\npool_max = 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATCHEL_")}
    cases = [
        ((), {CONFIG_VARIABLE: str(config)}, f"Setting port (`port` in the config file {config}): "),
        ((), {CONFIG_VARIABLE: str(config)}, f"(`postgres.pool_max` in the config file {config}): "),
        ((), {CONFIG_VARIABLE: str(config), "SATCHEL_PORT": "70000"}, "Setting port (SATCHEL_PORT): "),
        ((), {"satchel_port": "70000"}, "Setting port (SATCHEL_PORT): "),  # names are read in any case
        ((), {"SATCHEL_POSTGRES": '{"pool_max": 0}'}, "Setting postgres.pool_max (SATCHEL_POSTGRES): "),
        (("--port", "70000"), {"SATCHEL_PORT": "80000"}, "Setting port (--port): "),
        (("--postgres-pool-max", "0"), {}, "Setting postgres.pool_max (--postgres-pool-max): "),
    ]
    for flags, variables, said in cases:
        done = subprocess.run(
            cli_command("serve", *flags, data_dir=tmp_path / "data"),
            capture_output=True, text=True, timeout=60, check=False, env={**env, **variables},
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert said in done.stderr, (flags, variables, done.stderr)


@pytest.mark.parametrize(
    "url",
    ["notaurl", "satchel.example.com", "ftp://satchel.example.com", "https://", "https://x.com:port",
     "https://x.com/?a=1", "https://x.com/#top", "https://x.com/a b"],
)  # fmt: skip
def test_a_public_url_that_is_no_base_url_is_refused(url: str) -> None:
    """`notaurl` was taken, and every URL the server handed out began `notaurl/v2`."""
    with pytest.raises(ConfigFileError, match=r"Setting public_url .*: it must be an http:// or https://"):
        load(public_url=url)


def test_a_public_url_keeps_its_path_less_a_trailing_slash(tmp_path: Path) -> None:
    assert load(public_url="https://satchel.example.com/").base_url == "https://satchel.example.com"
    assert load(public_url="http://[::1]:8080/satchel/").public_url == "http://[::1]:8080/satchel"
    done = subprocess.run(
        cli_command("serve", "--public-url", "notaurl", data_dir=tmp_path / "data"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("Error: Setting public_url (--public-url): it must be an http:// or https")
    assert not (tmp_path / "data").exists()
