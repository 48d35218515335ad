"""`satchel run` against a real server: the run made through the API, the command started with the
environment the SDK reads at home, its output passed through, and its end recorded (SUCCEEDED, FAILED, or
ABORTED on SIGINT or an abort through the API) with its exit code; then the run read back with the official
client, through its chained routes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from apify_client import ApifyClient

from tests.conftest import Server, start_server, stop_server
from tests.harness.cli import cli_command

COMMAND = Path(__file__).parent / "sdk" / "run_env.py"


def _satchel_run(
    server: Server, *args: str, token: str | None = None, **kwargs: Any
) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SATCHEL_", "APIFY_"))}
    env |= {"SATCHEL_URL": server.base_url, "SATCHEL_TOKEN": token or server.token}
    return subprocess.Popen(
        cli_command("run", *args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _end(server: Server, run_id: str) -> tuple[str, int | None]:
    """How the run ended, as the official client reads it: its status and exit code."""
    got = ApifyClient(server.token, api_url=server.base_url).run(run_id).get()
    assert got is not None
    return got.status, got.exit_code


def _run_id(stderr: str) -> str:
    first = stderr.splitlines()[0]
    assert first.startswith("satchel run: run "), stderr
    return first.split()[3]


def test_a_command_runs_as_a_run_with_the_sdk_environment(server: Server) -> None:
    process = _satchel_run(
        server, "--actor", "env-actor", "--input", '{"pages": 3}', "--", sys.executable, str(COMMAND), "0"
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    env = json.loads(stdout.splitlines()[0])  # the command's stdout is its own
    run_id = _run_id(stderr)
    assert "SUCCEEDED (exit code 0)" in stderr.splitlines()[-1]

    client = ApifyClient(server.token, api_url=server.base_url)
    run = client.run(run_id).get()
    assert run is not None
    assert run.status == "SUCCEEDED"
    assert run.exit_code == 0
    assert run.finished_at is not None
    assert run.meta.origin == "CLI"
    assert env == {
        "APIFY_IS_AT_HOME": "1",
        "APIFY_TOKEN": server.token,
        "APIFY_API_BASE_URL": server.base_url,
        "APIFY_API_PUBLIC_BASE_URL": server.base_url,
        "ACTOR_ID": run.act_id,
        "ACTOR_RUN_ID": run_id,
        "ACTOR_DEFAULT_KEY_VALUE_STORE_ID": run.default_key_value_store_id,
        "ACTOR_DEFAULT_DATASET_ID": run.default_dataset_id,
        "ACTOR_DEFAULT_REQUEST_QUEUE_ID": run.default_request_queue_id,
        "APIFY_ACTOR_PRICING_INFO": '{"pricingModel":"FREE"}',
        "APIFY_CHARGED_ACTOR_EVENT_COUNTS": '{"apify-actor-start":0}',
    }
    for store_id in (run.default_key_value_store_id, run.default_dataset_id, run.default_request_queue_id):
        assert store_id in stderr  # the run's storages are printed
    # What the command stored, read back through the run and through the Actor's last run.
    store = client.run(run_id).key_value_store()
    assert store.get_record("INPUT")["value"] == {"pages": 3}  # type: ignore[index]
    assert store.get_record("OUTPUT")["value"] == {"input": {"pages": 3}}  # type: ignore[index]
    last = client.actor("~env-actor").last_run(status="SUCCEEDED")
    assert last.get().id == run_id  # type: ignore[union-attr]
    assert last.key_value_store().get_record("OUTPUT")["value"] == {"input": {"pages": 3}}  # type: ignore[index]
    assert run_id in [item.id for item in client.actor("~env-actor").runs().list().items]
    assert run_id in [item.id for item in client.runs().list(desc=True).items]


def test_data_dir_names_the_local_server_from_any_folder(server: Server, tmp_path: Path) -> None:
    """No SATCHEL_URL or SATCHEL_TOKEN and no data dir in the folder: --data-dir says where to find them."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SATCHEL_", "APIFY_"))}
    command = cli_command("run", "--data-dir", str(server.data_dir), "--", sys.executable, str(COMMAND), "0")
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[0])
    assert (seen["APIFY_API_BASE_URL"], seen["APIFY_TOKEN"]) == (server.base_url, server.token)
    # Stopped, the run says how to go on: with the same --data-dir, so the line works from here as it is.
    interrupt = "import os, signal, time; os.kill(os.getppid(), signal.SIGINT); time.sleep(300)"
    command = cli_command("run", "--data-dir", str(server.data_dir), "--", sys.executable, "-c", interrupt)
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    run_id = _run_id(done.stderr)
    line = next(line for line in done.stderr.splitlines() if "to go on from where it stopped" in line)
    again = f"--data-dir {server.data_dir} --resume {run_id} -- {sys.executable} -c '{interrupt}'"
    assert line.endswith(f"satchel run {again}")


def test_a_run_resumed_goes_on_with_its_own_storages(server: Server) -> None:
    first = _satchel_run(
        server, "--actor", "resumed", "--input", '{"page": 7}', "--", sys.executable, str(COMMAND), "3"
    )
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 3, stderr
    run_id = _run_id(stderr)
    client = ApifyClient(server.token, api_url=server.base_url)
    store = client.run(run_id).key_value_store()
    store.set_record("PROGRESS", {"done": 41})  # what the stopped crawl had got to
    again = _satchel_run(server, "--resume", run_id, "--", sys.executable, str(COMMAND), "0")
    stdout, stderr = again.communicate(timeout=60)
    assert again.returncode == 0, stderr
    assert f"run {run_id} (FAILED until now) again" in stderr
    env = json.loads(stdout.splitlines()[0])
    run = client.run(run_id).get()
    assert run is not None
    assert (run.status, run.exit_code, run.finished_at is not None) == ("SUCCEEDED", 0, True)
    assert env["ACTOR_RUN_ID"] == run_id
    assert env["ACTOR_DEFAULT_KEY_VALUE_STORE_ID"] == run.default_key_value_store_id
    assert store.get_record("PROGRESS")["value"] == {"done": 41}  # type: ignore[index]
    assert store.get_record("OUTPUT")["value"] == {"input": {"page": 7}}  # type: ignore[index]
    # A run is resumed alone: its Actor and INPUT are its own.
    refused = _satchel_run(server, "--resume", run_id, "--input", "{}", "--", "true")
    _, stderr = refused.communicate(timeout=60)
    assert refused.returncode == 2, stderr
    assert [r.id for r in client.actor(run.act_id).runs().list().items] == [run_id]


def test_a_failing_command_fails_the_run_and_its_exit_code_is_kept(server: Server, tmp_path: Path) -> None:
    input_file = tmp_path / "input.json"
    input_file.write_text('{"from": "file"}')
    process = _satchel_run(server, "--input", f"@{input_file}", "--", sys.executable, str(COMMAND), "3")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 3
    run = ApifyClient(server.token, api_url=server.base_url).run(_run_id(stderr))
    got = run.get()
    assert got is not None
    assert (got.status, got.exit_code) == ("FAILED", 3)
    assert run.key_value_store().get_record("OUTPUT")["value"] == {"input": {"from": "file"}}  # type: ignore[index]


def test_sigint_is_passed_on_and_the_run_is_aborted(server: Server) -> None:
    process = _satchel_run(server, "--", sys.executable, str(COMMAND), "wait")
    assert process.stdout is not None
    assert process.stderr is not None
    while process.stdout.readline().strip() != "waiting":
        assert process.poll() is None, process.stderr.read()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGINT  # the command died of the SIGINT passed on
    run_id = _run_id(stderr)
    assert _end(server, run_id) == ("ABORTED", 130)
    assert "ABORTED" in stderr.splitlines()[-1]
    # The log ends as the terminal does: with the line that goes on with the run, and how it ended.
    log = ApifyClient(server.token, api_url=server.base_url).run(run_id).log().get()
    assert log is not None
    hint, end = (line.split(" ", 1)[1] for line in log.splitlines()[-2:])
    assert hint.startswith("satchel run: to go on from where it stopped: satchel run ")
    assert f"--resume {run_id} --" in hint
    assert end == f"satchel run: run {run_id} ABORTED (exit code 130, SIGINT)"


def test_a_signal_that_comes_as_the_command_starts_is_passed_on(server: Server) -> None:
    """The command signals `satchel run` the moment it starts, before it has said anything: the signal is
    passed on all the same, the command dies of it, and the run ends ABORTED (not `satchel run` gone and the
    command left running)."""
    interrupt_parent = "import os, signal, time; os.kill(os.getppid(), signal.SIGINT); time.sleep(300)"
    process = _satchel_run(server, "--", sys.executable, "-c", interrupt_parent)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGINT
    assert _end(server, _run_id(stderr)) == ("ABORTED", 130)


def test_an_abort_through_the_api_stops_the_command(server: Server) -> None:
    process = _satchel_run(server, "--", sys.executable, str(COMMAND), "wait")
    assert process.stdout is not None
    assert process.stderr is not None
    while process.stdout.readline().strip() != "waiting":
        assert process.poll() is None, process.stderr.read()
    client = ApifyClient(server.token, api_url=server.base_url)
    run = client.runs().list(desc=True, limit=1).items[0]
    assert client.run(run.id).abort().status == "ABORTED"
    _, stderr = process.communicate(timeout=60)
    assert _run_id(stderr) == run.id
    assert process.returncode == 128 + signal.SIGTERM
    got = client.run(run.id).get()
    assert got is not None
    assert (got.status, got.exit_code) == ("ABORTED", 128 + signal.SIGTERM)


def test_an_abort_through_the_api_kills_a_command_that_ignores_sigterm(server: Server) -> None:
    """As the platform kills an aborted run's container: SIGTERM, then SIGKILL if it has not ended by then."""
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True);"
        " time.sleep(300)"
    )
    process = _satchel_run(server, "--actor", "stubborn", "--", sys.executable, "-c", stubborn)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    client = ApifyClient(server.token, api_url=server.base_url)
    run = client.actor("~stubborn").last_run().get()
    assert run is not None
    assert client.run(run.id).abort().status == "ABORTED"
    _, stderr = process.communicate(timeout=60)
    assert "did not end 10 s after SIGTERM: it is killed (SIGKILL)" in stderr
    assert process.returncode == 128 + signal.SIGKILL
    assert _end(server, run.id) == ("ABORTED", 128 + signal.SIGKILL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--input", "{not json", "--", "true"), "not JSON"),
        (("--input", "@/no/such/file", "--", "true"), "cannot read"),
        (("--actor", "bad_name!", "--", "true"), "Actor name"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(
    server: Server, args: tuple[str, ...], message: str
) -> None:
    process = _satchel_run(server, *args)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert message in stderr


def test_a_command_that_cannot_start_fails_its_run(server: Server) -> None:
    process = _satchel_run(server, "--", "/no/such/command")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 127
    got = ApifyClient(server.token, api_url=server.base_url).run(_run_id(stderr)).get()
    assert got is not None
    assert got.status == "FAILED"
    assert got.exit_code == 127
    assert got.status_message
    assert "could not be started" in got.status_message
    assert "'/no/such/command'" in got.status_message  # named, as the user typed it


def test_a_wrong_token_is_refused(server: Server) -> None:
    process = _satchel_run(server, "--", "true", token="apify_api_" + "w" * 36)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "token" in stderr.lower()


STAMPED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (.*)")

# Prints a line on stdout and one on stderr every 0.3 s, each in several writes (print unbuffered does).
PRINTER = """
import sys, time
for i in range(8):
    print("out", i)
    print("err", i, file=sys.stderr)
    time.sleep(0.5)
print("no newline at the end", end="")
"""


def test_the_command_output_is_shown_and_kept_in_the_run_log_as_it_comes(server: Server) -> None:
    """Shown as before, and kept in the run's log in whole lines; a client following the log (`stream`) gets
    the lines while the command runs, and the answer ends once the run has."""
    process = _satchel_run(server, "--actor", "log-printer", "--", sys.executable, "-c", PRINTER)
    assert process.stderr is not None
    run_id = _run_id(process.stderr.readline())
    followed: list[tuple[float, bytes]] = []

    def follow() -> None:
        url = f"{server.base_url}/v2/actor-runs/{run_id}/log"
        headers = {"authorization": f"Bearer {server.token}"}
        with httpx.stream("GET", url, params={"stream": "1"}, headers=headers, timeout=60) as answer:
            followed.extend((time.monotonic(), chunk) for chunk in answer.iter_bytes())

    follower = threading.Thread(target=follow)
    follower.start()
    stdout, stderr = process.communicate(timeout=60)
    ended = time.monotonic()
    follower.join(30)
    assert not follower.is_alive()
    assert process.returncode == 0, stderr
    assert stdout == "".join(f"out {i}\n" for i in range(8)) + "no newline at the end"
    assert [line for line in stderr.splitlines() if line.startswith("err")] == [f"err {i}" for i in range(8)]

    log = ApifyClient(server.token, api_url=server.base_url).run(run_id).log().get()
    assert log is not None
    # Each line begins with the time it came, as on the platform (where the clients split a log in messages).
    stamped = [STAMPED.fullmatch(line) for line in log.splitlines()]
    assert all(stamped), log
    lines = [match[1] for match in stamped if match]
    # It ends as the terminal does, saying how the run ended, on a line of its own.
    assert lines[-1] == f"satchel run: run {run_id} SUCCEEDED (exit code 0)"
    assert sorted(lines[:-1]) == sorted(
        [f"out {i}" for i in range(8)] + [f"err {i}" for i in range(8)] + ["no newline at the end"]
    )
    assert [line for line in lines if line.startswith("out")] == [f"out {i}" for i in range(8)]
    # The follower had the whole log, and some of it a second or more before the command ended.
    assert b"".join(chunk for _, chunk in followed).decode() == log
    assert followed[0][0] < ended - 1.0, (followed[0][0], ended)


def test_the_command_ends_when_satchel_run_output_is_closed(server: Server) -> None:
    """`satchel run -- yes | head -1` ends as `yes | head -1` does: the command's stdout goes with satchel
    run's own."""
    process = _satchel_run(server, "--", "yes")
    assert process.stdout is not None
    assert process.stdout.readline() == "y\n"
    process.stdout.close()  # as head does once it has its line
    process.wait(timeout=30)
    assert process.stderr is not None
    with process.stderr:
        stderr = process.stderr.read()
    assert _end(server, _run_id(stderr))[0] == "FAILED"  # killed by SIGPIPE, as without satchel run


def test_a_command_that_cannot_start_says_so_in_the_log(server: Server, tmp_path: Path) -> None:
    not_runnable = tmp_path / "script.sh"
    not_runnable.write_text("echo hi\n")  # no execute permission
    process = _satchel_run(server, "--", str(not_runnable))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 126  # found, but not runnable: as a shell says it
    run_id = _run_id(stderr)
    log = ApifyClient(server.token, api_url=server.base_url).run(run_id).log().get()
    assert log is not None
    assert "could not be started: Permission denied" in log


def test_the_log_and_the_end_wait_for_a_server_that_was_away(tmp_path: Path) -> None:
    """The server killed while the command runs, and back after it ended: the whole log and the run's end
    reach it, the end with the time the command ended, not the time the server came back."""
    first = start_server(tmp_path / "data")
    port = int(first.base_url.rsplit(":", 1)[1])
    ticker = "import time\nfor i in range(10): print('tick', i, flush=True); time.sleep(0.3)"
    process = _satchel_run(first, "--actor", "away", "--", sys.executable, "-c", ticker)
    assert process.stdout is not None
    assert process.stdout.readline() == "tick 0\n"
    stop_server(first, kill=True)
    time.sleep(5)  # the command ends (3 s) while the server is away
    back_at = time.time()
    second = start_server(tmp_path / "data", port=port)
    try:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        assert "SUCCEEDED (exit code 0)" in stderr.splitlines()[-1]
        run = ApifyClient(second.token, api_url=second.base_url).run(_run_id(stderr))
        got = run.get()
        assert got is not None
        assert (got.status, got.exit_code) == ("SUCCEEDED", 0)
        assert got.finished_at is not None
        assert got.finished_at.timestamp() < back_at - 1
        log = run.log().get()
        assert log is not None
        lines = [line.split(" ", 1)[1] for line in log.splitlines()]
        assert lines[:-1] == [f"tick {i}" for i in range(10)]
        assert lines[-1].endswith("SUCCEEDED (exit code 0)")
    finally:
        stop_server(second)
