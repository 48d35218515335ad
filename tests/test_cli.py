"""The management commands, run as an operator would, against the data dir of a running server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.harness.cli import run_cli


def satchel(server: Server, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, data_dir=server.data_dir, ok=ok)


def whoami(server: Server, token: str) -> httpx.Response:
    return httpx.get(f"{server.api}/users/me", headers={"authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("cli") / "data")
    yield server
    stop_server(server)


def test_users_and_tokens(running: Server) -> None:
    out = satchel(running, "users", "create", "carol").stdout
    token = out.split("API token: ")[1].strip()
    assert token.startswith("apify_api_")
    assert len(token) >= 40
    assert whoami(running, token).json()["data"]["username"] == "carol"

    again = satchel(running, "users", "create", "carol", ok=False)
    assert "already exists" in again.stderr
    bad = satchel(running, "users", "create", "no~tilde", ok=False)
    assert "not valid" in bad.stderr

    second = satchel(running, "tokens", "create", "carol").stdout.strip()
    assert second != token
    assert whoami(running, second).status_code == 200
    listing = satchel(running, "users", "list").stdout
    carol = next(line for line in listing.splitlines() if line.startswith("carol "))
    assert carol.split()[2:4] == ["RESTRICTED", "2"]

    ids = [line.split()[0] for line in satchel(running, "tokens", "list", "carol").stdout.splitlines()[1:]]
    assert len(ids) == 2
    # Tokens are kept only as digests: neither appears anywhere in the database file.
    db = (running.data_dir / "satchel.db").read_bytes()
    assert token.encode() not in db
    assert second.encode() not in db

    # Revoking by the token itself takes effect at once on the running server; the other token still works.
    satchel(running, "tokens", "revoke", token)
    assert whoami(running, token).status_code == 401
    assert whoami(running, token).json()["error"]["type"] == "invalid-token"
    assert whoami(running, second).status_code == 200
    remaining = satchel(running, "tokens", "list", "carol").stdout.splitlines()[1:]
    assert len(remaining) == 1
    satchel(running, "tokens", "revoke", remaining[0].split()[0])
    assert whoami(running, second).status_code == 401
    missing = satchel(running, "tokens", "revoke", "apify_api_nosuchtoken", ok=False)
    assert "No such token: it was revoked already, or never made." in missing.stderr
    # Revoking again says it may be revoked already (it said only "No such token."), and still fails.
    again = satchel(running, "tokens", "revoke", second, ok=False)
    assert again.returncode == 1
    assert again.stderr == "Error: No such token: it was revoked already, or never made.\n"


def test_share_command(running: Server) -> None:
    token = satchel(running, "users", "create", "dave").stdout.split("API token: ")[1].strip()
    with running.client() as owner:
        store = owner.post("/key-value-stores", params={"name": "cli-shared"}).json()["data"]
        owner.put(f"/key-value-stores/{store['id']}/records/a", content=b"hello")
    url = f"{running.api}/key-value-stores/{store['id']}/records/a"
    dave = {"authorization": f"Bearer {token}"}
    assert httpx.get(url, headers=dave).status_code == 404

    assert "dave can now read" in satchel(running, "share", "admin~cli-shared", "dave", "--read").stdout
    assert httpx.get(url, headers=dave).text == "hello"
    assert httpx.put(url, headers=dave, content=b"x").status_code == 403

    satchel(running, "share", store["id"], "dave", "--write")
    assert httpx.put(url, headers=dave, content=b"from dave").status_code == 201
    # Settings stay the owner's.
    assert httpx.delete(f"{running.api}/key-value-stores/{store['id']}", headers=dave).status_code == 403

    satchel(running, "share", "admin~cli-shared", "dave", "--revoke")
    assert httpx.get(url, headers=dave).status_code == 404

    assert "not found" in satchel(running, "share", "admin~nope", "dave", "--read", ok=False).stderr
    assert "not found" in satchel(running, "share", store["id"], "nobody", "--read", ok=False).stderr
    assert "--read, --write or --revoke" in satchel(running, "share", store["id"], "dave", ok=False).stderr
    # Two at once were taken as the last of them.
    satchel(running, "share", store["id"], "dave", "--read")
    pairs = [("--read", "--write"), ("--write", "--read"), ("--read", "--revoke"), ("--write", "--revoke")]
    for both in pairs:
        done = satchel(running, "share", store["id"], "dave", *both, ok=False)
        assert done.returncode == 2, both
        assert "Error: Give one of --read, --write and --revoke" in done.stderr
    assert httpx.get(url, headers=dave).status_code == 200  # still a reader, no more
    assert httpx.put(url, headers=dave, content=b"x").status_code == 403


def test_revoked_admin_token_is_replaced_on_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("admin") / "data"
    server = start_server(data, token="")  # no SATCHEL_TOKEN: the server makes one and keeps it
    token_file = data / "admin-token"
    first = token_file.read_text().strip()
    assert whoami(server, first).status_code == 200
    satchel(server, "tokens", "revoke", first)
    assert whoami(server, first).status_code == 401
    stop_server(server)

    server = start_server(data, token="")
    try:
        second = token_file.read_text().strip()
        assert second != first
        assert whoami(server, second).status_code == 200
        assert whoami(server, first).status_code == 401
    finally:
        stop_server(server)


def test_public_url_of_a_key_that_is_no_key_is_a_usage_error(running: Server) -> None:
    """It was InvalidRequest's traceback."""
    with running.client() as owner:
        owner.post("/key-value-stores", params={"name": "cli-public"})
    done = satchel(running, "public-url", "cli-public", "bad/key", ok=False)
    assert done.returncode == 2
    assert "Error: Invalid value for KEY: Record key is not valid" in done.stderr
    assert satchel(running, "public-url", "cli-public", "good-key").stdout.count("/records/good-key?") == 1
