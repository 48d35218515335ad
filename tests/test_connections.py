"""Connections: idle ones and slow clients do not starve others; an early error answer ends its connection."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server

IDLE = 500
SLOW_UPLOADS = 8
SLOW_READERS = 4
BOUND = 5.0  # seconds: generous, only to tell "answered" from "starved"


@pytest.fixture(scope="module")
def small_limit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("connections") / "data", env={"SATCHEL_MAX_RECORD_BYTES": "100000"}
    )
    yield server
    stop_server(server)


def test_an_error_answered_before_the_body_is_read_closes_the_connection(small_limit: Server) -> None:
    """The rest of the body is still coming, so the connection must not carry the client's next request."""
    with small_limit.client() as http:
        store_id = http.post("/key-value-stores").json()["data"]["id"]
        for _ in range(20):
            response = http.put(f"/key-value-stores/{store_id}/records/big", content=os.urandom(3_000_000))
            assert response.status_code == 413
            assert response.headers["connection"] == "close"
            # The next request on the same client must not land on the connection the server drops.
            assert http.get(f"/key-value-stores/{store_id}/records/big").status_code == 404
        response = http.put("/key-value-stores/nothing-here/records/k", content=os.urandom(3_000_000))
        assert (response.status_code, response.headers["connection"]) == (404, "close")
        assert http.get(f"/key-value-stores/{store_id}").status_code == 200


def _port(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def _request(server: Server, method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} /v2{path} HTTP/1.1", "Host: satchel", f"Authorization: Bearer {server.token}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _trickle(sock: socket.socket, total: int, stop: threading.Event, sent: list[int]) -> None:
    """Send a body one small piece at a time, as a client on a very slow link would."""
    with contextlib.suppress(OSError):
        while sent[0] < total and not stop.is_set():
            piece = min(64, total - sent[0])
            sock.sendall(b"s" * piece)
            sent[0] += piece
            time.sleep(0.05)


def _timed(what: str, call: object) -> httpx.Response:
    began = time.monotonic()
    response: httpx.Response = call()  # type: ignore[operator]
    took = time.monotonic() - began
    assert took < BOUND, f"{what} took {took:.1f} s"
    return response


def test_idle_connections_and_slow_clients_do_not_starve_others(server: Server, tmp_path: Path) -> None:
    port = _port(server)
    with server.client() as http:
        store_id = http.post("/key-value-stores").json()["data"]["id"]
        big = os.urandom(20 * 1024 * 1024)
        assert http.put(f"/key-value-stores/{store_id}/records/big", content=big).status_code == 201
    sockets: list[socket.socket] = []
    stop = threading.Event()
    threads = []
    try:
        # Idle connections: half never say anything, half made one request and stay open (keep-alive).
        for i in range(IDLE):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sockets.append(sock)
            if i % 2:
                sock.sendall(_request(server, "GET", "/users/me", {}))
        for sock in sockets[1::2]:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # Slow uploads trickling their bodies, and slow readers that never read what they asked for.
        progress = []
        for i in range(SLOW_UPLOADS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sockets.append(sock)
            path = f"/key-value-stores/{store_id}/records/slow-{i}"
            sock.sendall(_request(server, "PUT", path, {"Content-Length": "1000000"}))
            sent = [0]
            progress.append((sock, sent))
            threads.append(threading.Thread(target=_trickle, args=(sock, 1_000_000, stop, sent), daemon=True))
        for _ in range(SLOW_READERS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sockets.append(sock)
            sock.sendall(_request(server, "GET", f"/key-value-stores/{store_id}/records/big", {}))
        for thread in threads:
            thread.start()
        time.sleep(0.5)

        # Meanwhile another client gets every kind of answer promptly.
        with server.client() as http:
            base = f"/key-value-stores/{store_id}"
            for i in range(10):
                url = f"{base}/records/fast-{i}"
                body = os.urandom(1000 if i % 2 else 300_000)
                assert _timed("PUT", lambda u=url, b=body: http.put(u, content=b)).status_code == 201
                assert _timed("GET", lambda u=url: http.get(u)).content == body
                assert _timed("keys", lambda: http.get(f"{base}/keys")).status_code == 200
                assert _timed("store", lambda: http.get(base)).status_code == 200
            assert _timed("GET big", lambda: http.get(f"{base}/records/big")).content == big
        assert all(sent[0] > 0 for _, sent in progress), "the slow uploads never got going"
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        for sock in sockets:
            sock.close()
