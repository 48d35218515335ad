"""Large bodies stream through the server: in and out whole, with flat server memory."""

from __future__ import annotations

import contextlib
import hashlib
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import Server
from tests.harness.bodies import MIB, chunks
from tests.harness.processes import children

SIZE = 256 * MIB


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_256_mib_record_streams_in_and_out_with_flat_memory(server: Server, store: dict[str, str]) -> None:
    (pid,) = children(server.pid)  # the one worker
    before = peak_rss_kib(pid)
    expected = hashlib.sha256()
    for piece in chunks(SIZE):
        expected.update(piece)
    url = f"/key-value-stores/{store['id']}/records/big"
    with server.client() as http:
        response = http.put(url, content=chunks(SIZE), headers={"content-type": "application/octet-stream"})
        assert response.status_code == 201, response.text
        got = hashlib.sha256()
        size = 0
        with http.stream("GET", url) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-length"] == str(SIZE)
            for piece in stream.iter_raw():
                got.update(piece)
                size += len(piece)
        assert size == SIZE
        assert got.hexdigest() == expected.hexdigest()
    growth_mib = (peak_rss_kib(pid) - before) / 1024
    assert growth_mib <= 64, f"peak RSS grew by {growth_mib:.0f} MiB"


def test_a_large_gzip_record_is_decoded_on_the_fly_for_clients_that_cannot(
    server: Server, store: dict[str, str]
) -> None:
    raw = b"".join(chunks(32 * MIB, seed=2))
    compressor = zlib.compressobj(1, wbits=31)
    gz = compressor.compress(raw) + compressor.flush()
    url = f"/key-value-stores/{store['id']}/records/big-gz"
    with server.client() as http:
        response = http.put(
            url, content=gz, headers={"content-type": "text/plain", "content-encoding": "gzip"}
        )
        assert response.status_code == 201
        with http.stream("GET", url, headers={"accept-encoding": "identity"}) as stream:
            assert "content-encoding" not in stream.headers
            assert int(stream.headers["content-length"]) == len(raw)
            body = b"".join(stream.iter_raw())
        assert body == raw
        with http.stream("GET", url, headers={"accept-encoding": "gzip"}) as stream:
            assert stream.headers["content-encoding"] == "gzip"
            assert b"".join(stream.iter_raw()) == gz


def test_an_upload_cut_short_leaves_no_record(server: Server, store: dict[str, str]) -> None:
    url = f"/key-value-stores/{store['id']}/records/cut"

    def broken() -> Iterator[bytes]:
        yield b"x" * MIB
        raise RuntimeError("client gave up")

    with server.client() as http:
        with contextlib.suppress(RuntimeError, httpx.TransportError):
            http.put(url, content=broken())
        assert http.get(url).status_code == 404
