"""A refusal that comes before the request's body is read reaches the client (raw sockets, real server).

Closing with unread bytes makes the kernel reset the connection, which can overtake the answer: a small body
is read and dropped first (and the connection serves the next request); a large one is not waited for.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import Server

PIECE = b"x" * 4096


def port(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def head(path: str, framing: str, token: str = "apify_api_" + "n" * 36) -> bytes:
    return (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/octet-stream\r\n{framing}\r\n\r\n"
    ).encode()


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"the connection ended without an answer: {data!r}"
        data += piece
    top, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(rest) < int(headers.get("content-length", 0)):
        more = sock.recv(65536)
        assert more
        rest += more
    return int(status_line.split()[1]), headers, rest


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.mark.parametrize("attempt", range(10))
def test_a_chunked_body_with_a_bad_token_gets_its_401(server: Server, attempt: int) -> None:
    """Sent in pieces, as a streaming client sends a file: the 401 arrives every time, never a reset."""
    path = f"/v2/key-value-stores/nobody~store/records/k{attempt}"
    with socket.create_connection(("127.0.0.1", port(server)), timeout=30) as sock:
        sock.sendall(head(path, "Transfer-Encoding: chunked"))
        for _ in range(16):  # 64 KiB, past the answer
            sock.sendall(chunk(PIECE))
            time.sleep(0.002)
        sock.sendall(b"0\r\n\r\n")
        status, headers, body = read_answer(sock)
    assert status == 401
    assert b'"type":"invalid-token"' in body
    assert headers.get("connection") != "close"


def test_the_connection_serves_the_next_request_after_a_small_refused_body(server: Server) -> None:
    body = PIECE * 8
    path = "/v2/key-value-stores/nobody~store/records/k"
    with socket.create_connection(("127.0.0.1", port(server)), timeout=30) as sock:
        sock.sendall(head(path, f"Content-Length: {len(body)}") + body)
        assert read_answer(sock)[0] == 401
        sock.sendall(
            b"GET /v2/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {server.token}\r\n\r\n".encode()
        )
        status, _, answer = read_answer(sock)
    assert status == 200
    assert b'"username"' in answer


def test_a_large_declared_body_is_not_waited_for(server: Server) -> None:
    """A refused 100 MiB upload, none of it sent: the answer comes at once and the connection closes."""
    path = "/v2/key-value-stores/nobody~store/records/k"
    with socket.create_connection(("127.0.0.1", port(server)), timeout=30) as sock:
        sock.sendall(head(path, f"Content-Length: {100 * 1024 * 1024}"))
        sock.settimeout(1.5)  # under the drain's wait: an answer only because it did not wait
        status, headers, _ = read_answer(sock)
    assert (status, headers["connection"]) == (401, "close")


def test_a_body_left_unfinished_gets_its_answer_and_a_close(server: Server) -> None:
    """A small declared body of which half comes, then nothing: answered after the drain gives up."""
    path = "/v2/key-value-stores/nobody~store/records/k"
    with socket.create_connection(("127.0.0.1", port(server)), timeout=30) as sock:
        sock.sendall(head(path, "Content-Length: 8192") + PIECE)
        status, headers, _ = read_answer(sock)
    assert (status, headers["connection"]) == (401, "close")
