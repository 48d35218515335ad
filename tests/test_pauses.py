"""A write that waited out a pause of the server (SIGSTOP, a paused VM) is refused, not applied once the
server runs again, where it would land over newer writes made elsewhere meanwhile."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from satchel.api.pauses import AFTER_SECONDS
from satchel.clock import PAUSE_SECONDS
from tests.conftest import start_server, stop_server
from tests.harness.processes import writing_process
from tests.harness.rigs import wait_until

RECORD = "/key-value-stores/~paused/records/k"


@pytest.mark.parametrize("body", ["whole", "in two parts"])
def test_a_write_that_waited_out_a_pause_is_refused(tmp_path: Path, body: str) -> None:
    """The client gives up on a write sent to the paused server: waiting in the kernel for the server (the
    whole request), or in the middle of its body. Neither is stored when the server runs again."""
    server = start_server(tmp_path / "data", args=("--workers", "2"))
    assert server.process is not None
    group = server.process.pid
    try:
        with server.client() as http:
            assert http.post("/key-value-stores", params={"name": "paused"}).status_code == 201
            assert http.put(RECORD, content=b"before").status_code == 201

            def stale() -> Iterator[bytes]:
                yield b"sta"
                if body == "in two parts":
                    os.killpg(group, signal.SIGSTOP)
                    time.sleep(0.2)
                yield b"le"

            if body == "whole":
                os.killpg(group, signal.SIGSTOP)
            try:
                with pytest.raises(httpx.TimeoutException):
                    http.put(RECORD, content=stale(), timeout=PAUSE_SECONDS)
                time.sleep(PAUSE_SECONDS)
            finally:
                os.killpg(group, signal.SIGCONT)
            time.sleep(1)  # the server reads and answers what waited
            assert http.get(RECORD).content == b"before"
            # Writes are taken again once the pause is behind.
            started = time.monotonic()
            assert wait_until(lambda: http.put(RECORD, content=b"after").status_code == 201, 10, 0.2)
            assert time.monotonic() - started < AFTER_SECONDS + 2
            assert http.get(RECORD).content == b"after"
        log = (server.data_dir.parent / f"server-{httpx.URL(server.base_url).port}.log").read_text()
        assert "did not run for" in log
    finally:
        stop_server(server)


def test_reads_are_served_right_after_a_pause(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    assert server.process is not None
    try:
        with server.client() as http:
            assert http.post("/key-value-stores", params={"name": "paused"}).status_code == 201
            assert http.put(RECORD, content=b"kept").status_code == 201
            os.killpg(server.process.pid, signal.SIGSTOP)
            time.sleep(PAUSE_SECONDS + 0.5)
            os.killpg(server.process.pid, signal.SIGCONT)
            answer = http.get(RECORD)
            assert answer.status_code == 200
            assert answer.content == b"kept"
            refused = http.put(RECORD, content=b"new")
            assert refused.status_code == 503
            assert refused.json()["error"]["type"] == "service-unavailable"
            assert "did not run" in refused.json()["error"]["message"]
            assert refused.headers["retry-after"] == "2"  # writes are taken again 2 s after a pause
    finally:
        stop_server(server)


def test_a_write_that_waited_on_the_stopped_writing_process_is_refused(tmp_path: Path) -> None:
    """The workers run and the process that commits for them is stopped: the write handed to it waits on
    the link, its client gives up, and it is not applied when that process runs again."""
    server = start_server(tmp_path / "data", args=("--workers", "2"))
    assert server.process is not None
    writer = writing_process(server.process.pid)
    assert writer is not None
    try:
        with server.client() as http:
            assert http.post("/key-value-stores", params={"name": "paused"}).status_code == 201
            assert http.put(RECORD, content=b"before").status_code == 201
            os.kill(writer, signal.SIGSTOP)
            try:
                with pytest.raises(httpx.TimeoutException):
                    http.put(RECORD, content=b"stale", timeout=1)
                time.sleep(PAUSE_SECONDS)
            finally:
                os.kill(writer, signal.SIGCONT)
            time.sleep(1)
            assert http.get(RECORD).content == b"before"
            assert wait_until(lambda: http.put(RECORD, content=b"after").status_code == 201, 10, 0.2)
            assert http.get(RECORD).content == b"after"
    finally:
        stop_server(server)
