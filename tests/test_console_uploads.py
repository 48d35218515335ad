"""Console uploads against a real server, over raw sockets where the timing of the answer is the point.

An upload streams from the request into storage as it arrives: over max_record_bytes it is refused by its
Content-Length before any of the body is read, or, sent without one, as soon as it passes the limit; nothing
of it is spooled outside the data dir; and a record is written only for a whole, well-formed form.
"""

from __future__ import annotations

import os
import re
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server

MIB = 1024 * 1024
LIMIT = 4 * MIB
BOUNDARY = "satchel-test-boundary"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("uploads")
    (root / "tmp").mkdir()
    # TMPDIR: where Python's tempfile (and so Starlette's form parser) would spool.
    env = {"SATCHEL_MAX_RECORD_BYTES": str(LIMIT), "TMPDIR": str(root / "tmp")}
    server = start_server(root / "data", env=env)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def cookie(server: Server) -> str:
    with httpx.Client(base_url=server.base_url) as console:
        assert console.post("/console/login", data={"token": server.token}).status_code == 303
        return "; ".join(f"{name}={value}" for name, value in console.cookies.items())


@pytest.fixture
def store(server: Server) -> str:
    with server.client() as api:
        return str(api.post("/key-value-stores").json()["data"]["id"])


def field(name: str, value: str) -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()


def file_head(filename: str, content_type: str = "application/octet-stream") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()


END = f"\r\n--{BOUNDARY}--\r\n".encode()  # after a file's data
CLOSE = END[2:]  # after a field, which ends in CRLF itself


def connect(server: Server) -> socket.socket:
    port = int(server.base_url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def request_head(server: Server, store: str, cookie: str, length: int | None) -> bytes:
    framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return (
        f"POST /console/key-value-stores/{store}/records HTTP/1.1\r\nHost: {server.base_url[7:]}\r\n"
        f"Cookie: {cookie}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n{framing}\r\n\r\n"
    ).encode()


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str]]:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    status_line, *lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers


def record(server: Server, store: str, key: str) -> httpx.Response:
    with server.client() as api:
        return api.get(f"/key-value-stores/{store}/records/{key}")


def post_form(server: Server, store: str, cookie: str, body: bytes) -> httpx.Response:
    headers = {"cookie": cookie, "content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    with httpx.Client(base_url=server.base_url, timeout=30) as console:
        return console.post(f"/console/key-value-stores/{store}/records", content=body, headers=headers)


def worker_pids(server: Server) -> list[int]:
    assert server.process is not None
    pids, todo = [], [server.process.pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        for task in Path(f"/proc/{pid}/task").iterdir():
            todo += [int(child) for child in (task / "children").read_text().split()]
    return pids


def open_files(server: Server) -> list[str]:
    found = []
    for pid in worker_pids(server):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                found.append(os.readlink(fd))
            except OSError:
                continue
    return found


def test_an_upload_declared_over_the_limit_is_refused_before_its_body(
    server: Server, store: str, cookie: str
) -> None:
    with connect(server) as sock:
        sock.sendall(request_head(server, store, cookie, 10 * 1024 * MIB))  # 10 GiB promised, none sent
        started = time.monotonic()
        sock.settimeout(5)
        status, headers = read_answer(sock)
        took = time.monotonic() - started
    assert status == 413
    assert headers["connection"] == "close"
    assert took < 2, f"answered after {took:.1f} s"


def test_an_upload_without_a_length_is_refused_as_it_passes_the_limit(
    server: Server, store: str, cookie: str
) -> None:
    """Sent in chunks with no Content-Length, just past the limit and then held open: the answer comes while
    the body is unfinished. (Counting what was sent before an answer would measure the socket buffers,
    which on loopback can take in more than the limit.)"""

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    piece = os.urandom(256 * 1024)
    with connect(server) as sock:
        sock.sendall(request_head(server, store, cookie, None))
        sock.sendall(chunk(field("key", "big") + file_head("big.bin")))
        try:
            for _ in range(LIMIT // len(piece) + 2):
                sock.sendall(chunk(piece))
        except (BrokenPipeError, ConnectionResetError):
            pass
        # The body is neither finished nor closed: only a server that counts as it reads can answer now.
        answered = select.select([sock], [], [], 20)[0]
        assert answered, "no answer to an unfinished body already past the limit"
        status, headers = read_answer(sock)
    assert (status, headers["connection"]) == (413, "close")
    assert record(server, store, "big").status_code == 404
    assert not [f for f in (server.data_dir / "blobs" / "tmp").rglob("*") if f.is_file()]


def test_an_upload_streams_into_the_data_dir_not_the_temp_folder(
    server: Server, store: str, cookie: str
) -> None:
    """The store page's own form, posted as a browser posts it (its fields in page order, the value left
    empty), with the file held up halfway: by then the server writes it under the data dir, nowhere else."""
    with httpx.Client(base_url=server.base_url, headers={"cookie": cookie}) as console:
        page = console.get(f"/console/key-value-stores/{store}").text
    upload_form = re.search(r'<form[^>]*id="upload".*?</form>', page, re.DOTALL)
    assert upload_form is not None
    order = re.findall(r'name="([^"]+)"', upload_form.group(0))
    assert order == ["key", "contentType", "file", "text"]  # what decides the record comes before the file
    body = os.urandom(3 * MIB)
    values = {"key": "streamed", "contentType": "image/x-test", "text": ""}
    before = b"".join(field(name, values[name]) for name in order[: order.index("file")]) + file_head("s.bin")
    after = b"\r\n" + b"".join(field(name, values[name]) for name in order[order.index("file") + 1 :]) + CLOSE
    with connect(server) as sock:
        sock.sendall(request_head(server, store, cookie, len(before) + len(body) + len(after)))
        sock.sendall(before + body[: 2 * MIB])
        time.sleep(0.5)  # the server has what was sent so far: it is writing it somewhere
        files = open_files(server)
        sock.sendall(body[2 * MIB :] + after)
        status, _ = read_answer(sock)
    assert status == 303
    temp = str(server.data_dir.parent / "tmp")
    # The metrics counters' files live in the temp folder too (as prometheus_client's multiprocess mode keeps
    # them); no part of the upload may.
    assert not [f for f in files if f.startswith(temp) and "/satchel-metrics-" not in f], files
    assert [f for f in files if f.startswith(str(server.data_dir / "blobs"))], "written under the data dir"
    got = record(server, store, "streamed")
    assert (got.content, got.headers["content-type"]) == (body, "image/x-test")


NOT_WHOLE = {
    # The file's part ended; the form did not (the next part is cut off in its headers).
    "cut-after-the-file": field("key", "cut")
    + file_head("c.bin")
    + b"x" * 300_000
    + f"\r\n--{BOUNDARY}\r\nContent-Disposition: form-da".encode(),
    # What decides the record came after the file, which was on its way into storage by then.
    "type-after-the-file": field("key", "cut")
    + file_head("c.bin")
    + b"x\r\n"
    + field("contentType", "a/b")
    + CLOSE,
    "key-after-the-file": file_head("c.bin") + b"x\r\n" + field("key", "late") + CLOSE,
    # A file and a typed value (the page's form sends the value after the file): which was meant is unknown.
    "a-file-and-a-value": field("key", "cut")
    + file_head("c.bin")
    + b"x\r\n"
    + field("text", "typed")
    + CLOSE,
}


@pytest.mark.parametrize(("name", "body"), NOT_WHOLE.items(), ids=list(NOT_WHOLE))
def test_a_form_that_is_not_whole_stores_nothing(
    server: Server, store: str, cookie: str, name: str, body: bytes
) -> None:
    """The record commits only once the whole form has arrived and was understood."""
    response = post_form(server, store, cookie, body)
    assert response.status_code == 400, (name, response.status_code)
    for key in ("cut", "late", "c.bin"):
        assert record(server, store, key).status_code == 404, (name, key)


def test_a_field_form_is_bounded_too(server: Server, store: str, cookie: str) -> None:
    """Every other Console form (create, settings, share, sign-in) is read whole: within 64 KiB."""
    with connect(server) as sock:
        sock.sendall(
            (
                f"POST /console/key-value-stores HTTP/1.1\r\nHost: {server.base_url[7:]}\r\n"
                f"Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {10 * 1024 * MIB}\r\n\r\n"
            ).encode()
        )
        sock.settimeout(5)
        status, _ = read_answer(sock)
    assert status == 413
    headers = {"cookie": cookie, "content-type": "application/x-www-form-urlencoded"}

    def endless() -> Iterator[bytes]:
        yield b"name="
        for _ in range(64):
            yield b"a" * MIB

    with httpx.Client(base_url=server.base_url, timeout=30) as console:
        try:
            answer: Any = console.post("/console/key-value-stores", content=endless(), headers=headers)
        except httpx.TransportError:
            answer = None  # the server closed the connection once it had answered
    assert answer is None or answer.status_code == 413
