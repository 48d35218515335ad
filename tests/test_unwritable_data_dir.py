"""A data dir the server may not write to: a write that needs the blob folder gets a 503 saying so (not a 500
and a traceback a request), the log says it once, and writes work again once the folder is mended; a server
started on such a dir says why in one line.

Tests run as root, whom file modes do not stop, so the folders are made immutable (`chattr +i`), which stops
root too (EPERM, as a read-only mount gives EROFS and a folder's mode EACCES); skipped where the file
system has no such attribute.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.cli import cli_command
from tests.harness.disk import immutable
from tests.harness.server import Server, start_server, stop_server

BIG = b"b" * 300_000  # past the inline threshold: a blob file


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = start_server(tmp_path / "data")
    yield started
    stop_server(started)


def test_a_blob_folder_that_cannot_be_written_is_a_503_until_mended(server: Server) -> None:
    with server.client() as http:
        assert http.post("/key-value-stores", params={"name": "stuck"}).status_code == 201
        records = "/key-value-stores/~stuck/records"
        assert http.put(f"{records}/before", content=BIG).status_code == 201
        folders = [p for p in (server.data_dir / "blobs" / "tmp").iterdir() if p.is_dir()]
        with immutable(*folders):
            for n in range(3):
                refused = http.put(f"{records}/big{n}", content=BIG)
                assert refused.status_code == 503, refused.text
                error = refused.json()["error"]
                assert error["type"] == "service-unavailable"
                assert "cannot write to its storage" in error["message"]
                assert refused.headers["retry-after"] == "1"
            # What needs no blob file goes on, and what was stored is read.
            assert http.put(f"{records}/small", content=b"tiny").status_code == 201
            assert http.get(f"{records}/before").content == BIG
        assert http.put(f"{records}/after", content=BIG).status_code == 201
        assert http.get(f"{records}/after").content == BIG
        assert http.get(f"{records}/big0").status_code == 404
    log = next(server.data_dir.parent.glob("server-*.log")).read_text()
    assert log.count("cannot write to the blob folder") == 1  # once, not once a request
    assert "Traceback" not in log


def test_a_server_started_on_a_data_dir_it_cannot_write_says_why(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with immutable(data_dir):
        started = subprocess.run(
            cli_command("serve", "--port", "0", data_dir=data_dir),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert started.returncode == 1
    assert "Traceback" not in started.stderr
    assert "Starting failed: " in started.stderr
    assert "must be writable" in started.stderr
