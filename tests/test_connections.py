"""Connections: idle ones and slow clients do not starve others; an early error answer ends its connection;
a port already in use stops a second server before it starts (see also test_hostile_connections.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from satchel.serving import PortInUse, claim_port
from tests.conftest import TOKEN, Server, free_port, start_server, stop_server
from tests.harness.cli import cli_command

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


# --- the port


def _serve(port: int, data_dir: Path, *args: str) -> tuple[int | None, str]:
    """Run `satchel serve` on a port; its exit code (None if it was still serving after 20 s) and output."""
    with subprocess.Popen(
        cli_command("serve", "--port", str(port), *args, data_dir=data_dir),
        env={**os.environ, "SATCHEL_TOKEN": TOKEN, "SATCHEL_LOG_LEVEL": "warning"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            return None, output
        return process.returncode, output


def _refused(port: int, data_dir: Path, *args: str) -> str:
    code, output = _serve(port, data_dir, *args)
    assert code is not None, f"a second server started on port {port}: {output}"
    assert code != 0
    assert f"Port {port} on 127.0.0.1 is already in use" in output, output
    assert not data_dir.exists(), "it got as far as making its data dir"
    return output


def test_commands_follow_the_newest_server_still_running_on_their_data_dir(tmp_path: Path) -> None:
    """Two servers on one data dir (a new one started before the old one stops): the commands there talk to
    the newest, and once it stops, to the one still running, not to the address of the one that stopped."""
    data_dir = tmp_path / "data"
    first = start_server(data_dir)
    try:
        with first.client() as http:
            assert http.post("/key-value-stores", params={"name": "s"}).status_code == 201
        assert _kv_url(data_dir).startswith(first.base_url + "/v2/")
        second = start_server(data_dir)
        try:
            assert _kv_url(data_dir).startswith(second.base_url + "/v2/")
        finally:
            stop_server(second)
        assert _kv_url(data_dir).startswith(first.base_url + "/v2/")
    finally:
        stop_server(first)
    # With none running, the address of the last one started; the ended servers' entries are cleared away.
    assert _kv_url(data_dir).startswith(second.base_url + "/v2/")
    assert list((data_dir / "serving").iterdir()) == []


def _kv_url(data_dir: Path) -> str:
    """A link `satchel public-url` makes from the data dir to the admin's store `s`: it begins with the
    address the commands there take for the local server's."""
    done = subprocess.run(
        cli_command("public-url", "s", data_dir=data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_a_second_server_on_a_taken_port_stops_before_starting(tmp_path: Path) -> None:
    """Not sharing it: granian listens with SO_REUSEPORT, so a second server would get half the requests."""
    first = start_server(tmp_path / "first" / "data", env={"SATCHEL_HEADER_TIMEOUT_SECONDS": "0.5"})
    port = _port(first)
    try:
        # Connections the server closed (these idled past the header timeout) stay in TIME_WAIT on its side...
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
                assert idle.recv(100) == b""
        _refused(port, tmp_path / "second" / "data")
        _refused(port, tmp_path / "second" / "data", "--workers", "2")
        assert (
            httpx.get(f"{first.api}/users/me", headers={"authorization": f"Bearer {TOKEN}"}).status_code
            == 200
        )
    finally:
        stop_server(first)
    # ...which does not count as in use: a server starts on the port as soon as the first has stopped.
    second = subprocess.Popen(
        cli_command("serve", "--port", str(port), data_dir=tmp_path / "again"),
        env={**os.environ, "SATCHEL_TOKEN": TOKEN, "SATCHEL_LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    again = Server(first.base_url, TOKEN, tmp_path / "again", second)
    try:
        deadline = time.monotonic() + 30
        with again.client(timeout=5) as http:
            while True:
                assert second.poll() is None, "the server on the freed port exited"
                with contextlib.suppress(httpx.TransportError):
                    if http.get("/users/me").is_success:
                        break
                assert time.monotonic() < deadline, "the server on the freed port did not answer"
                time.sleep(0.1)
    finally:
        stop_server(again)


def test_a_port_another_program_listens_on_is_refused(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        _refused(other.getsockname()[1], tmp_path / "data")


def test_several_workers_share_the_port_and_keep_it(tmp_path: Path) -> None:
    """--workers N: each worker listens on the port itself (SO_REUSEPORT); the check does not stop them."""
    server = start_server(tmp_path / "workers" / "data", args=("--workers", "2"))
    try:
        with server.client() as http:
            store_id = http.post("/key-value-stores").json()["data"]["id"]
            for i in range(40):  # on fresh connections, so both workers take some
                with server.client() as fresh:
                    assert (
                        fresh.put(f"/key-value-stores/{store_id}/records/k{i}", content=b"v").status_code
                        == 201
                    )
            assert len(http.get(f"/key-value-stores/{store_id}/keys").json()["data"]["items"]) == 40
        _refused(_port(server), tmp_path / "second" / "data")
    finally:
        stop_server(server)


def test_a_claimed_port_refuses_another_claim_but_not_the_servers_own_sockets() -> None:
    port = free_port()
    claim = claim_port("127.0.0.1", port)
    assert claim is not None
    try:
        with pytest.raises(PortInUse, match=f"Port {port} on 127.0.0.1 is already in use"):
            claim_port("127.0.0.1", port)
        # granian's listeners (SO_REUSEADDR and SO_REUSEPORT, one per worker) bind beside the claim.
        listeners = [socket.socket() for _ in range(2)]
        try:
            for listener in listeners:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                listener.bind(("127.0.0.1", port))
                listener.listen()
            claim.close()
            # Their listening alone keeps the port refused to the next server.
            with pytest.raises(PortInUse):
                claim_port("127.0.0.1", port)
        finally:
            for listener in listeners:
                listener.close()
    finally:
        claim.close()
    freed = claim_port("127.0.0.1", port)
    assert freed is not None
    freed.close()
    assert claim_port("127.0.0.1", 0) is None  # any free port: nothing to claim
