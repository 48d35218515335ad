"""A run's log through the API, in-process on every engine: what its owner adds (as `satchel run` sends its
command's output) is read back whole, by its three routes, by whoever may read the run; the log has a limit;
it goes with its run. Following a log as it grows needs a real server: test_run_command.py."""

from __future__ import annotations

import gzip
import itertools
import os
import threading

from satchel.run_log import RunLog
from satchel.service.validation import MAX_LOG_APPEND, MAX_LOG_BYTES
from tests.conftest import Server, every_engine
from tests.test_runs import _error, _start, _stranger

server = every_engine(in_process=True)
NAMES = itertools.count()


def test_what_the_owner_adds_is_read_back_whole_on_every_route(server: Server) -> None:
    actor = f"log-actor-{next(NAMES)}"
    with server.client() as http:
        run = _start(http, f"~{actor}", origin="CLI")
        url = f"/actor-runs/{run['id']}/log"
        assert http.get(url).content == b""  # nothing printed yet
        pieces = [
            b"2026-12-05T10:00:00.000Z INFO  starting\n",
            "crawled 1 page ✓\n".encode(),
            b"\x1b[32mok\x1b[0m",
        ]
        for piece in pieces:
            added = http.post(url, content=piece, headers={"content-type": "text/plain"})
            assert added.status_code == 204, added.text
        # A gzipped piece is kept decoded, as the command printed it.
        http.post(url, content=gzip.compress(b"\nthe end\n"), headers={"content-encoding": "gzip"})
        whole = b"".join(pieces) + b"\nthe end\n"
        got = http.get(url)
        assert got.status_code == 200
        assert got.headers["content-type"] == "text/plain; charset=utf-8"
        # What a command printed (a crawled page's HTML, say) never runs as a page on Satchel's origin.
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["content-security-policy"] == "sandbox"
        assert got.content == whole.replace(b"\x1b[32m", b"").replace(b"\x1b[0m", b"")  # as it reads
        assert http.get(url, params={"raw": "1"}).content == whole  # as it was printed
        assert http.get(f"/logs/{run['id']}", params={"raw": "true"}).content == whole
        assert http.get(f"/acts/~{actor}/runs/last/log", params={"raw": "1"}).content == whole
        # Followed only while a run `satchel run` drives is unfinished: a finished one is sent as it is.
        http.put(f"/actor-runs/{run['id']}", json={"status": "SUCCEEDED", "exitCode": 0})
        assert http.get(url, params={"stream": "1", "raw": "1"}).content == whole
        saved = http.get(url, params={"download": "true", "raw": "1"})
        assert saved.headers["content-disposition"] == f'attachment; filename="{run["id"]}.log"'
        assert saved.content == whole

        # From any byte on, across the pieces, as a followed log is read.
        assert server.app is not None
        table = server.app.app.services.runs.table
        for start in (0, 5, len(pieces[0]), len(pieces[0]) + 3, len(whole) - 1, len(whole), len(whole) + 10):
            assert server.app.run(table.log(run["id"], start)) == whole[start:], start


def test_who_may_read_and_add(server: Server) -> None:
    stranger = _stranger(server)
    with server.client() as http, server.client(token=stranger) as other, server.anonymous() as nobody:
        run = _start(http, f"~log-actor-{next(NAMES)}")
        url = f"/actor-runs/{run['id']}/log"
        http.post(url, content=b"secret\n")
        _error(other.get(url), 404, "record-not-found")
        _error(nobody.get(f"/logs/{run['id']}"), 404, "record-or-token-not-found")
        _error(other.post(url, content=b"forged\n"), 404)
        http.put(f"/actor-runs/{run['id']}", json={"generalAccess": "ANYONE_WITH_ID_CAN_READ"})
        assert nobody.get(url).content == b"secret\n"  # read with the run
        _error(other.post(url, content=b"forged\n"), 403, "insufficient-permissions")
        _error(nobody.post(url, content=b"forged\n"), 401)
        assert http.get(url).content == b"secret\n"
        _error(http.get("/logs/nosuchrun12345"), 404, "record-not-found")
        _error(http.get(url, params={"stream": "maybe"}), 400, "invalid-value")


def test_a_log_has_a_limit_and_goes_with_its_run(server: Server) -> None:
    with server.client() as http:
        run = _start(http, f"~log-actor-{next(NAMES)}")
        url = f"/actor-runs/{run['id']}/log"
        _error(http.post(url, content=b"x" * (MAX_LOG_APPEND + 1)), 413, "request-too-large")
        piece = b"y" * MAX_LOG_APPEND
        for _ in range(MAX_LOG_BYTES // MAX_LOG_APPEND - 1):
            assert http.post(url, content=piece).status_code == 204
        assert http.post(url, content=piece[:-6]).status_code == 204
        # What fits is kept, cut after its last whole line: 4 of these bytes, with 6 left.
        error = _error(http.post(url, content=b"abc\ndefgh\n"), 413, "log-too-large")
        assert "10 MiB" in error["message"]
        assert "4 bytes of these 10 were kept" in error["message"]
        assert http.get(url).content.endswith(b"yyabc\n")
        error = _error(http.post(url, content=b"one line more\n"), 413, "log-too-large")
        assert "0 bytes of these 14 were kept" in error["message"]
        assert len(http.get(url).content) == MAX_LOG_BYTES - 2
        http.put(f"/actor-runs/{run['id']}", json={"status": "SUCCEEDED", "exitCode": 0})
        assert http.delete(f"/actor-runs/{run['id']}").status_code == 204
        _error(http.get(url), 404, "record-not-found")
        assert server.app is not None
        assert server.app.run(server.app.app.services.runs.table.log(run["id"], 0)) == b""


def test_an_empty_append_adds_nothing(server: Server) -> None:
    with server.client() as http:
        run = _start(http, f"~log-actor-{next(NAMES)}")
        url = f"/actor-runs/{run['id']}/log"
        assert http.post(url, content=b"").status_code == 204
        assert http.get(url).content == b""


def test_satchel_runs_last_lines_come_after_the_commands_last_piece() -> None:
    """How the run ended is the log's last line even when the command's last piece (no newline at its end)
    is still in the pipe as the command is found ended: the pipe is read to its end first."""
    sent: list[bytes] = []
    read_end, write_end = os.pipe()
    log = RunLog(sent.append, lambda _text: None, MAX_LOG_APPEND)
    with os.fdopen(read_end, "rb", buffering=0) as source:
        log.copy(source, None)
        os.write(write_end, b"out 1\nno newline at the end")
        threading.Timer(0.3, os.close, args=(write_end,)).start()  # the pipe ends after the command did
        log.close(["satchel run: run r SUCCEEDED (exit code 0)"])
    lines = [line.split(b" ", 1)[1] for line in b"".join(sent).splitlines()]
    assert lines == [b"out 1", b"no newline at the end", b"satchel run: run r SUCCEEDED (exit code 0)"]
