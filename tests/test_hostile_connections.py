"""Hostile connections: thousands held open doing nothing, or too little, while a normal client is served.

Each kind of connection that holds a server's place without using it, in its thousands: idle ones that never
send a byte, slow header senders, request bodies promised and never sent (the API's and a Console form's),
and kept-alive connections left idle after an answer. Three servers: one patient enough to hold them all
while a normal client must still be answered at once; one with short timeouts, which must end each kind in
time while slow but steady clients finish; one with a small connection cap, which must close the idlest
connections rather than make the next client wait, and never one the server is working for.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import socket
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import httpx
import orjson
import pytest

from tests.conftest import Server, start_server, stop_server

FLOOD = 3000
BOUND = 5.0  # seconds: generous, only to tell "answered" from "starved"
TIMEOUT = 2  # seconds: the strict server's header and body timeouts
CAP = 400  # connections: the capped server's max_connections
CAPPED_FLOOD = 2400  # more than the old fixed cap of 2,048, and more than the listen queue holds beyond CAP


@pytest.fixture(scope="module", autouse=True)
def enough_files() -> None:
    """This process holds thousands of sockets: raise its open-file limit as the server raises its own."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if min(hard, resource.getrlimit(resource.RLIMIT_NOFILE)[0]) < FLOOD + 500:
        pytest.skip(f"the open-file limit ({hard}) is too low to hold {FLOOD} connections")


def _server(tmp_path_factory: pytest.TempPathFactory, name: str, env: dict[str, str]) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp(name) / "data", env=env)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Timeouts long enough that every hostile connection is still held while the normal client is served."""
    env = {"SATCHEL_HEADER_TIMEOUT_SECONDS": "120", "SATCHEL_BODY_TIMEOUT_SECONDS": "120"}
    yield from _server(tmp_path_factory, "patient", env)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"SATCHEL_HEADER_TIMEOUT_SECONDS": str(TIMEOUT), "SATCHEL_BODY_TIMEOUT_SECONDS": str(TIMEOUT)}
    yield from _server(tmp_path_factory, "strict", env)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"SATCHEL_MAX_CONNECTIONS": str(CAP), "SATCHEL_HEADER_TIMEOUT_SECONDS": "120"}
    yield from _server(tmp_path_factory, "capped", env)


# --- raw connections


def _port(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def _head(method: str, path: str, *lines: str) -> bytes:
    return ("\r\n".join((f"{method} {path} HTTP/1.1", "Host: satchel", *lines)) + "\r\n\r\n").encode()


@dataclass
class Kind:
    """One kind of hostile connection: what it sends on opening, and (if anything) what it sends later."""

    opening: Callable[[Server, str], bytes]
    trickle: bytes = b""  # sent again and again, never finishing what was begun
    answered: bool = False  # the opening is a whole request, answered before the connection idles


def _store(server: Server) -> str:
    with server.client() as http:
        return str(http.post("/key-value-stores").json()["data"]["id"])


KINDS = {
    "idle": Kind(lambda server, store: b""),
    "slow-headers": Kind(
        lambda server, store: b"GET /v2/users/me HTTP/1.1\r\nHost: satchel\r\n", trickle=b"X-Slow: 1\r\n"
    ),
    "stalled-body": Kind(
        lambda server, store: (
            _head(
                "PUT",
                f"/v2/key-value-stores/{store}/records/stalled",
                f"Authorization: Bearer {server.token}",
                "Content-Length: 100000",
            )
            + b"only the start"
        )
    ),
    "stalled-json-body": Kind(
        lambda server, store: (
            _head(
                "POST",
                "/v2/key-value-stores",
                f"Authorization: Bearer {server.token}",
                "Content-Length: 1000",
            )
            + b'{"na'
        )
    ),
    "stalled-console-form": Kind(
        lambda server, store: (
            _head(
                "POST",
                "/console/login",
                "Content-Type: application/x-www-form-urlencoded",
                "Content-Length: 1000",
            )
            + b"token=apify_api_"
        )
    ),
    "idle-after-keep-alive": Kind(
        lambda server, store: _head("GET", "/v2/users/me", f"Authorization: Bearer {server.token}"),
        answered=True,
    ),
}


@dataclass
class Flood:
    sockets: list[socket.socket] = field(default_factory=list)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@contextlib.contextmanager
def flood(server: Server, kind: Kind, count: int) -> Iterator[Flood]:
    """Open `count` connections of one kind (and read the answer, for those that get one) and hold them."""
    store = _store(server)
    opening = kind.opening(server, store)
    held = Flood()
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", _port(server)), timeout=30)
            held.sockets.append(sock)
            if opening:
                sock.sendall(opening)
        if kind.answered:
            for sock in held.sockets:
                assert _response(sock).startswith(b"HTTP/1.1 200"), "the flood's own request was not answered"
        if kind.trickle:
            for sock in held.sockets:
                sock.sendall(kind.trickle)
        yield held
    finally:
        held.close()


def _response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, read off a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return data


def _closed(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (anything it said before is read and dropped)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True
    finally:
        sock.setblocking(True)
    return True


def _timed(what: str, call: Callable[[], httpx.Response], took: list[float]) -> httpx.Response:
    began = time.monotonic()
    response = call()
    took.append(time.monotonic() - began)
    assert took[-1] < BOUND, f"{what} took {took[-1]:.1f} s"
    return response


def served_promptly(server: Server) -> list[float]:
    """A normal client on fresh connections: API reads and writes and a Console page, each within BOUND."""
    took: list[float] = []
    with server.client() as http, server.anonymous() as page:
        assert _timed("users/me", lambda: http.get("/users/me"), took).status_code == 200
        created = _timed("POST store", lambda: http.post("/key-value-stores"), took)
        base = f"/key-value-stores/{created.json()['data']['id']}"
        for i in range(3):
            body = os.urandom(1000 if i % 2 else 300_000)
            url = f"{base}/records/normal-{i}"
            assert _timed("PUT", partial(http.put, url, content=body), took).status_code == 201
            assert _timed("GET", partial(http.get, url), took).content == body
        assert _timed("keys", lambda: http.get(f"{base}/keys"), took).status_code == 200
        console = f"{server.base_url}/console/login"
        assert _timed("Console", lambda: page.get(console), took).status_code == 200
    return took


# --- thousands held: the normal client is served at once


@pytest.mark.parametrize("name", list(KINDS))
def test_thousands_held_do_not_starve_a_normal_client(patient: Server, name: str) -> None:
    with flood(patient, KINDS[name], FLOOD) as held:
        time.sleep(0.5)  # let the server take them all in
        took = served_promptly(patient)
        # They were held all along, not dropped to make room: the patient server closes none of them.
        assert not any(_closed(sock) for sock in held.sockets[::50])
    assert max(took) < BOUND


# --- each kind ends within its timeout; slow but steady clients do not


@pytest.mark.parametrize("name", list(KINDS))
def test_each_kind_is_closed_within_its_timeout(strict: Server, name: str) -> None:
    kind = KINDS[name]
    with flood(strict, kind, 20) as held:
        began = time.monotonic()
        open_ones = list(held.sockets)
        while open_ones and time.monotonic() - began < TIMEOUT + BOUND:
            time.sleep(0.25)
            if kind.trickle:  # slow headers keep coming: the timeout counts the whole header, not the gaps
                for sock in open_ones:
                    with contextlib.suppress(OSError):
                        sock.sendall(kind.trickle)
            open_ones = [sock for sock in open_ones if not _closed(sock)]
        assert not open_ones, f"{len(open_ones)} of 20 still open after {time.monotonic() - began:.1f} s"
        assert time.monotonic() - began > TIMEOUT * 0.9, "closed before the timeout was up"
    assert max(served_promptly(strict)) < BOUND


def test_a_stalled_body_is_answered_408_and_a_slow_but_steady_one_is_not(strict: Server) -> None:
    """The API says why before it closes: 408 with the error envelope and Connection: close. The timeout
    counts each wait for the next piece, not the whole body: a slow upload that keeps coming finishes, and a
    long download (a file, and a streamed ZIP) is not cut when the body timeout passes."""
    with flood(strict, KINDS["stalled-body"], 1) as held:
        head, _, answer = _response(held.sockets[0]).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert b"connection: close" in head.lower()
    assert orjson.loads(answer)["error"]["type"] == "request-timeout"

    store = _store(strict)
    big = os.urandom(6 * 1024 * 1024)
    with strict.client() as http:
        assert http.put(f"/key-value-stores/{store}/records/big", content=big).status_code == 201

    body = os.urandom(60_000)
    sock = socket.create_connection(("127.0.0.1", _port(strict)), timeout=30)
    with sock:
        sock.sendall(
            _head(
                "PUT",
                f"/v2/key-value-stores/{store}/records/trickled",
                f"Authorization: Bearer {strict.token}",
                f"Content-Length: {len(body)}",
            )
        )
        began = time.monotonic()
        for i in range(0, len(body), 3000):  # 20 pieces, 0.15 s apart: 3 s in all, longer than the timeout
            sock.sendall(body[i : i + 3000])
            time.sleep(0.15)
        assert time.monotonic() - began > TIMEOUT
        assert _response(sock).startswith(b"HTTP/1.1 201")

    with strict.client() as http:
        assert http.get(f"/key-value-stores/{store}/records/trickled").content == body
        record = _slowly(http, f"/key-value-stores/{store}/records/big")
        assert record == big
        with zipfile.ZipFile(io.BytesIO(_slowly(http, f"/key-value-stores/{store}/records"))) as archive:
            assert archive.read("big") == big
            assert archive.read("trickled") == body


def _slowly(http: httpx.Client, path: str) -> bytes:
    """A download read at about 2.5 MiB/s, so that it takes longer than the body timeout."""
    began = time.monotonic()
    chunks = []
    with http.stream("GET", path) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes(256 * 1024):
            chunks.append(chunk)
            time.sleep(0.1)
    assert time.monotonic() - began > TIMEOUT
    return b"".join(chunks)


# --- the cap: the idlest are closed first, never a connection the server works for


def _trickled_upload(server: Server, store: str, body: bytes, result: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=30) as sock:
        sock.sendall(
            _head(
                "PUT",
                f"/v2/key-value-stores/{store}/records/during-flood",
                f"Authorization: Bearer {server.token}",
                f"Content-Length: {len(body)}",
            )
        )
        for i in range(0, len(body), 4000):
            sock.sendall(body[i : i + 4000])
            time.sleep(0.05)
        result.append(_response(sock))


def _slow_download(server: Server, path: str, result: list[int]) -> None:
    with server.client() as http, http.stream("GET", path) as response:
        got = 0
        for chunk in response.iter_bytes(64 * 1024):
            got += len(chunk)
            time.sleep(0.05)
        result.append(got)


def test_past_the_cap_the_idlest_connections_are_closed_first(capped: Server) -> None:
    store = _store(capped)
    big = os.urandom(4 * 1024 * 1024)
    with capped.client() as http:
        assert http.put(f"/key-value-stores/{store}/records/big", content=big).status_code == 201
    upload = os.urandom(300_000)
    uploaded: list[bytes] = []
    downloaded: list[int] = []
    steady = [
        threading.Thread(target=_trickled_upload, args=(capped, store, upload, uploaded)),
        threading.Thread(
            target=_slow_download, args=(capped, f"/key-value-stores/{store}/records/big", downloaded)
        ),
    ]
    for thread in steady:
        thread.start()
    try:
        with flood(capped, KINDS["idle"], CAPPED_FLOOD) as held:
            time.sleep(0.5)
            took = served_promptly(capped)
            # The connections opened first, silent longest, were closed to make room.
            first = held.sockets[: CAP // 2]
            assert sum(_closed(sock) for sock in first) > len(first) * 0.9
    finally:
        for thread in steady:
            thread.join(timeout=60)
    assert max(took) < BOUND
    # Clients that were sending or receiving all along were left alone, and finished.
    assert len(uploaded) == 1
    assert uploaded[0].startswith(b"HTTP/1.1 201"), uploaded
    assert downloaded == [len(big)]
    with capped.client() as http:
        assert http.get(f"/key-value-stores/{store}/records/during-flood").content == upload
