"""Console sessions, sign-in limits and clients that go away, against real `satchel serve` processes (httpx).

The cookie names a session kept in the metadata database, never the token; a session ends on signing out
(every copy of its cookie with it), when its token is revoked, and when it expires, on every node. Form posts
from other sites are refused, signing out included. Failed sign-ins are limited per address and per token.
A client that disconnects halfway through a form leaves at most a short line in the log, never a traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.harness.backends import Backends
from tests.harness.cli import new_user, run_cli
from tests.harness.server import client_from

COOKIE = "satchel_console"
STORES = "/console/key-value-stores"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("sessions") / "data", env={"SATCHEL_LOG_LEVEL": "info"})
    yield srv
    stop_server(srv)


def log_of(server: Server) -> Path:
    return server.data_dir.parent / f"server-{urlparse(server.base_url).port}.log"


def same_site(server: Server) -> dict[str, str]:
    """What a browser sends with a form posted from the Console's own page."""
    return {"origin": server.base_url}


def sign_in(server: Server, token: str, client: httpx.Client | None = None) -> httpx.Response:
    post = client.post if client is not None else httpx.post
    return post(
        f"{server.base_url}/console/login", data={"token": token}, headers=same_site(server), timeout=30
    )


def session_of(server: Server, token: str) -> str:
    """Sign in; what the cookie holds."""
    response = sign_in(server, token)
    assert response.status_code == 303, response.text
    return response.cookies[COOKIE]


def page(server: Server, session: str, path: str = STORES) -> httpx.Response:
    return httpx.get(server.base_url + path, headers={"cookie": f"{COOKIE}={session}"}, timeout=30)


def signed_in(server: Server, session: str) -> bool:
    response = page(server, session)
    if response.status_code == 303:
        assert response.headers["location"].startswith("/console/login?next=")
        return False
    assert response.status_code == 200, response.text
    return True


def post(
    server: Server,
    session: str,
    path: str,
    *,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A Console form post in a session, from the Console's own page unless other headers are given."""
    sent = {"cookie": f"{COOKIE}={session}", **(same_site(server) if headers is None else headers)}
    return httpx.post(server.base_url + path, data=data, headers=sent, timeout=30)


def satchel(server: Server, *args: str) -> str:
    return run_cli(*args, data_dir=server.data_dir).stdout


def test_the_cookie_names_a_session_not_the_token(server: Server) -> None:
    response = sign_in(server, server.token)
    assert response.status_code == 303
    assert response.headers["location"] == STORES
    cookie = response.headers["set-cookie"]
    session = response.cookies[COOKIE]
    assert server.token not in cookie
    assert len(session) >= 43  # 256 random bits
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert {"httponly", "samesite=strict", "path=/console", "max-age=43200"} <= set(attributes)
    assert signed_in(server, session)
    # The token itself is no cookie: a cookie that holds one (as the Console's once did) signs nobody in.
    assert not signed_in(server, server.token)
    # Each sign-in is a session of its own.
    assert session_of(server, server.token) != session
    # The account page knows which token this session was made from.
    assert page(server, session, "/console/account").text.count("(this session)") == 1


def test_signing_out_ends_the_session_and_every_copy_of_its_cookie(server: Server) -> None:
    session = session_of(server, server.token)
    other = session_of(server, server.token)  # another browser
    response = post(server, session, "/console/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"
    assert 'satchel_console=""' in response.headers["set-cookie"]
    assert "max-age=0" in response.headers["set-cookie"].lower()
    # The sign-in page it leads to says it was done.
    note = response.headers.get_list("set-cookie")
    with httpx.Client(base_url=server.base_url) as browser:
        for cookie in note:
            name, _, rest = cookie.partition("=")
            if name == "satchel_note":
                browser.cookies.set(name, rest.split(";")[0], path="/console")
        assert "Signed out." in browser.get("/console/login").text
    # A copy of the cookie, kept from before, is refused: the session is gone on the server.
    assert not signed_in(server, session)
    assert post(server, session, STORES, data={"name": "after-sign-out"}).status_code == 303
    with server.client() as api:
        assert api.get("/key-value-stores/~after-sign-out").status_code == 404
    assert signed_in(server, other)
    assert post(server, session, "/console/logout").status_code == 303  # again: nothing left to end


def test_the_sign_out_address_opened_asks_and_signs_nobody_out(server: Server) -> None:
    """/console/logout typed, bookmarked, or named by a sign-in's next= is a page with the Sign out button
    (it was a bare "Method Not Allowed"); only the form it holds signs out."""
    session = session_of(server, server.token)
    asked = page(server, session, "/console/logout")
    assert asked.status_code == 200
    assert 'action="/console/logout"' in asked.text
    assert "frame-ancestors 'none'" in asked.headers["content-security-policy"]
    assert signed_in(server, session)
    # Signed out already: on to the sign-in form.
    assert post(server, session, "/console/logout").status_code == 303
    gone = page(server, session, "/console/logout")
    assert (gone.status_code, gone.headers["location"]) == (303, "/console/login")
    # After signing in with next= naming it, the page, not an error.
    with httpx.Client(base_url=server.base_url, follow_redirects=True) as browser:
        landed = browser.post(
            "/console/login?next=/console/logout", data={"token": server.token}, headers=same_site(server)
        )
        assert (landed.status_code, landed.url.path) == (200, "/console/logout")
        assert 'action="/console/logout"' in landed.text


def test_form_posts_from_another_site_are_refused_signing_out_included(server: Server) -> None:
    session = session_of(server, server.token)
    for forged in ({"origin": "https://evil.example"}, {"referer": "https://evil.example/page"}):
        response = post(server, session, "/console/logout", headers=forged)
        assert response.status_code == 403, forged
        assert "another site" in response.text
        assert "set-cookie" not in response.headers
        assert signed_in(server, session)
        created = post(server, session, STORES, data={"name": "forged"}, headers=forged)
        assert created.status_code == 403
    with server.client() as api:
        assert api.get("/key-value-stores/~forged").status_code == 404
    forged_sign_in = httpx.post(
        f"{server.base_url}/console/login",
        data={"token": server.token},
        headers={"origin": "https://evil.example"},
    )
    assert forged_sign_in.status_code == 403
    assert "set-cookie" not in forged_sign_in.headers


def test_revoking_a_token_ends_the_sessions_made_from_it_for_good(tmp_path: Path) -> None:
    admin = "apify_api_" + "r" * 36  # set in the environment: given to the admin again at every start
    srv = start_server(tmp_path / "data", token=admin)
    try:
        token = new_user(srv.data_dir, "session-revoked")
        first, second = session_of(srv, token), session_of(srv, token)
        mine = session_of(srv, admin)
        satchel(srv, "tokens", "revoke", token)
        # The browser is sent to sign in again, told why, and its dead cookie goes.
        ended = page(srv, first)
        assert ended.status_code == 303
        assert ended.cookies.get("satchel_note") == "session-ended"
        (dropped,) = [c for c in ended.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
        assert "max-age=0" in dropped.lower()
        told = httpx.get(f"{srv.base_url}/console/login", cookies={"satchel_note": "session-ended"})
        assert "Your session has ended" in told.text
        assert not signed_in(srv, first)
        assert not signed_in(srv, second)
        assert signed_in(srv, mine)  # another token's session lives on
        assert sign_in(srv, token).status_code == 401

        # Revoked from the Console's account page, the session's own token ends that session.
        token = new_user(srv.data_dir, "session-self-revoked")
        session = session_of(srv, token)
        token_id = hashlib.sha256(token.encode()).hexdigest()[:12]
        assert post(srv, session, f"/console/account/tokens/{token_id}/revoke").status_code == 303
        assert not signed_in(srv, session)

        satchel(srv, "tokens", "revoke", admin)
        assert not signed_in(srv, mine)
    finally:
        stop_server(srv)
    srv = start_server(tmp_path / "data", token=admin)
    try:
        assert sign_in(srv, admin).status_code == 303  # the admin's token works again...
        assert not signed_in(srv, mine)  # ...but what was signed in with it before stays signed out
    finally:
        stop_server(srv)


def test_an_expired_session_is_refused_and_then_removed(tmp_path: Path) -> None:
    lifetime = 2.0
    srv = start_server(tmp_path / "data", env={"SATCHEL_CONSOLE_SESSION_HOURS": str(lifetime / 3600)})
    try:
        response = sign_in(srv, srv.token)
        assert "max-age=2" in response.headers["set-cookie"].lower()
        session = response.cookies[COOKIE]
        assert signed_in(srv, session)
        time.sleep(lifetime + 0.5)
        assert not signed_in(srv, session)  # refused at once, whether or not its row is gone yet
        # Housekeeping (every `lifetime` here) deletes the row.
        database = f"file:{srv.data_dir / 'satchel.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(database, uri=True)) as db:
            deadline = time.monotonic() + 10
            while db.execute("SELECT count(*) FROM sessions").fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.2)
            assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    finally:
        stop_server(srv)


def _go_away_halfway(port: int, head: str, body: bytes) -> None:
    """Send a request's headers and the start of its body, then close the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        time.sleep(0.002)


def test_clients_that_go_away_mid_form_leave_no_traceback(server: Server) -> None:
    port = urlparse(server.base_url).port
    assert port is not None
    session = session_of(server, server.token)
    with server.client() as api:
        store = api.post("/key-value-stores", params={"name": "went-away"}).json()["data"]["id"]
    host = f"Host: 127.0.0.1:{port}\r\nOrigin: {server.base_url}\r\nCookie: {COOKIE}={session}\r\n"
    length = "Content-Length: 100000\r\n\r\n"  # more than is ever sent
    form = f"Content-Type: application/x-www-form-urlencoded\r\n{length}"
    multipart = f"Content-Type: multipart/form-data; boundary=XX\r\n{length}"
    part = b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n' + b"a" * 3000
    record = f"Authorization: Bearer {server.token}\r\nContent-Type: text/plain\r\n{length}"
    requests = [
        (f"POST /console/login HTTP/1.1\r\n{host}{form}", b"token=apify_api_"),  # sign-in
        (f"POST {STORES} HTTP/1.1\r\n{host}{form}", b"name=half"),  # create a store
        (f"POST {STORES}/{store}/records HTTP/1.1\r\n{host}{multipart}", part),  # upload a file
        (f"PUT /v2/key-value-stores/{store}/records/k HTTP/1.1\r\n{host}{record}", b"x" * 3000),  # the API
    ]
    log = log_of(server)
    before = log.stat().st_size
    clients = 200
    for n in range(clients):
        _go_away_halfway(port, *requests[n % len(requests)])
    time.sleep(1.0)
    assert signed_in(server, session)  # the server is well, and has handled every one of them
    written = log.read_bytes()[before:].decode(errors="replace")
    assert "Traceback" not in written
    assert "ERROR" not in written
    lines = written.splitlines()
    assert len(lines) <= clients
    assert all(len(line) < 200 for line in lines), lines[:3]


def test_failed_sign_ins_are_limited_per_address_and_per_token(server: Server) -> None:
    def wrong(n: int) -> str:
        return f"apify_api_{n:036d}"

    with client_from("127.0.0.2") as guesser:
        for n in range(10):
            assert sign_in(server, wrong(n), guesser).status_code == 401
        # Over the limit, even the right token is refused from here: a guesser learns nothing more.
        limited = sign_in(server, server.token, guesser)
        assert limited.status_code == 429
        assert "Too many failed sign-ins" in limited.text
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert "set-cookie" not in limited.headers
    with client_from("127.0.0.3") as elsewhere:  # other addresses are not held up
        assert sign_in(server, server.token, elsewhere).status_code == 303
    # One token tried from many addresses is limited by itself.
    guessed = wrong(99)
    for n in range(10):
        with client_from(f"127.0.0.{10 + n}") as one:
            assert sign_in(server, guessed, one).status_code == 401
    with client_from("127.0.0.30") as last:
        assert sign_in(server, guessed, last).status_code == 429
        assert sign_in(server, wrong(100), last).status_code == 401


def test_a_session_is_known_and_ended_on_every_node(backends: Backends, tmp_path: Path) -> None:
    database = backends.locations("postgres+files")["database"]
    # One data dir: its files are the nodes' blob store (a node on a blob folder of its own is refused).
    one = start_server(tmp_path / "nodes" / "data", env={"SATCHEL_DATABASE": database})
    two = start_server(tmp_path / "nodes" / "data", env={"SATCHEL_DATABASE": database})
    try:
        session = session_of(one, one.token)
        assert signed_in(two, session)
        assert post(two, session, "/console/logout").status_code == 303
        assert not signed_in(one, session)
        assert not signed_in(two, session)
    finally:
        stop_server(one)
        stop_server(two)
