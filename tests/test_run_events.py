"""The platform's events that `satchel run` serves its command (satchel/run_events.py): `systemInfo` every
second on the socket ACTOR_EVENTS_WEBSOCKET_URL names, read by a plain WebSocket client and by the Apify SDK
for Python; and a stop told as `aborting` before any signal, with the command given time to end by itself,
unless the stop comes twice. The JavaScript crawl that releases its locks on `aborting` is in
test_crawl_js.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from apify_client import ApifyClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from satchel.run_events import PlatformEvents
from tests.conftest import Server
from tests.test_run_command import _end, _run_id, _satchel_run

SDK = Path(__file__).parent / "sdk"
LISTENER = SDK / "events_listener.py"


def _listening(process: subprocess.Popen[str]) -> dict[str, object]:
    """The first systemInfo event the command printed, once it says it is listening."""
    assert process.stdout is not None
    assert process.stderr is not None
    lines: list[str] = []
    while (line := process.stdout.readline().strip()) != "listening":
        assert process.poll() is None, process.stderr.read()
        lines.append(line)
    event: dict[str, object] = json.loads(lines[-1])
    return event


def test_the_command_hears_system_info_about_its_own_processes(server: Server) -> None:
    process = _satchel_run(server, "--memory", "2048", "--", sys.executable, str(LISTENER), "end")
    event = _listening(process)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert event["name"] == "systemInfo"
    data = event["data"]
    assert isinstance(data, dict)
    # The command is a Python process holding a WebSocket: tens of megabytes, not zero, not the machine.
    assert 5 * 2**20 < data["memCurrentBytes"] < 2**30
    assert data["memMaxBytes"] == 2048 * 2**20  # the run's memory, as --memory set it
    assert data["memTotalBytes"] >= data["memCurrentBytes"]
    assert 0 <= data["cpuCurrentUsage"] <= 100 * 64
    assert isinstance(data["isCpuOverloaded"], bool)
    assert str(data["createdAt"]).endswith("Z")
    run = ApifyClient(server.token, api_url=server.base_url).run(_run_id(stderr)).get()
    assert run is not None
    assert run.options.memory_mbytes == 2048


def test_the_python_sdk_reads_system_info_for_its_autoscaling(server: Server) -> None:
    process = _satchel_run(server, "--memory", "1024", "--", sys.executable, str(SDK / "events_actor.py"))
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    seen = json.loads(stdout.strip().splitlines()[-1])
    assert 0 <= seen["used_ratio"] <= 1
    assert seen["current_size"] > 5 * 2**20  # the Actor's own process, at least


@pytest.mark.parametrize("command", [[str(LISTENER), "abort"], [str(SDK / "events_actor.py"), "abort"]])
def test_a_stop_is_told_as_aborting_and_the_command_ends_by_itself(
    server: Server, command: list[str]
) -> None:
    """A plain WebSocket client, and an Actor's listener through the Apify SDK for Python, hear `aborting` on
    the first Ctrl-C and end by themselves, long before the signal would follow."""
    process = _satchel_run(server, "--", sys.executable, *command)
    _listening(process)
    began = time.monotonic()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert stdout.strip() == "aborting", stderr  # heard, and ended by itself before any signal came
    assert time.monotonic() - began < 20
    assert "told the run is aborting" in stderr
    assert "Cannot parse" not in stderr  # the SDK read the event
    run_id = _run_id(stderr)
    assert _end(server, run_id) == ("ABORTED", 0)  # the command's own exit code
    # `satchel run` itself says it was interrupted, as a script running it needs to know, and how to go on.
    assert process.returncode == 128 + signal.SIGINT
    assert f"satchel run --url {server.base_url} --resume {run_id} -- " in stderr


def test_a_graceful_abort_through_the_api_is_told_as_aborting(server: Server) -> None:
    process = _satchel_run(server, "--", sys.executable, str(LISTENER), "abort")
    _listening(process)
    client = ApifyClient(server.token, api_url=server.base_url)
    run = client.runs().list(desc=True, limit=1).items[0]
    assert client.run(run.id).abort(gracefully=True).status == "ABORTING"
    stdout, stderr = process.communicate(timeout=60)
    assert stdout.strip() == "aborting", stderr  # heard, and ended by itself
    assert "aborted gracefully through the API" in stderr
    assert _end(server, run.id) == ("ABORTED", 0)
    assert process.returncode == 0  # nobody interrupted `satchel run` itself: the command's own code


def test_a_second_stop_signals_the_command_at_once(server: Server) -> None:
    process = _satchel_run(server, "--", sys.executable, str(LISTENER), "ignore")
    assert process.stderr is not None
    _listening(process)
    process.send_signal(signal.SIGINT)
    while "told the run is aborting" not in process.stderr.readline():
        assert process.poll() is None
    began = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGINT, stderr  # the command died of the second one
    assert time.monotonic() - began < 20  # not the 30 s the first one gave it
    last = stderr.splitlines()[-1]  # the first lines, with the run's id, were read above
    assert last.startswith("satchel run: run ")
    assert _end(server, last.split()[3]) == ("ABORTED", 130)


def test_a_third_stop_kills_a_command_that_ignores_the_signal(server: Server) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True);"
        " time.sleep(300)"
    )
    process = _satchel_run(server, "--", sys.executable, "-c", stubborn)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    for _ in range(3):
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
    _, stderr = process.communicate(timeout=60)
    assert "the command is killed (SIGKILL)" in stderr
    assert process.returncode == 128 + signal.SIGKILL
    assert _end(server, _run_id(stderr)) == ("ABORTED", 128 + signal.SIGKILL)


def test_the_socket_answers_only_at_its_own_path() -> None:
    with PlatformEvents(1024) as events:
        port_url = events.url.rsplit("/", 1)[0]
        with pytest.raises(InvalidStatus) as refused:
            connect(port_url + "/guess").close()
        assert refused.value.response.status_code == 404
        with pytest.raises(InvalidStatus):  # a page in a browser may not listen in
            connect(events.url, origin=Origin("http://example.com")).close()
        with connect(events.url) as socket:
            deadline = time.monotonic() + 10
            while not events.listened:  # the server's side of the connection is set up on its own thread
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert events.aborting()
            assert json.loads(socket.recv(timeout=10)) == {"name": "aborting", "data": {}}
