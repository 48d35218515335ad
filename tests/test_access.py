"""The authorization matrix: each endpoint x each kind of caller x each generalAccess -> the expected status.

The expectations come from the rules as the API reference and the official clients state them, written here
independently of the server's code:
- the owner may do everything; a user granted WRITE may read and put/delete records; a user granted READ may
  read; store settings, sharing and deletion are the owner's alone;
- anyone (with or without a token) may read a store with ANYONE_WITH_ID_CAN_READ when they name it by id, and
  one with ANYONE_WITH_NAME_CAN_READ by id or `username~name`; FOLLOW_USER_SETTING means the owner's default;
- a caller who may not read a store gets the answer a missing store gets (404), never a hint that it exists;
- a caller who may read but not do what they asked gets 403, or 401 without a token;
- an unknown token is 401 `invalid-token`, whatever it asks.
"""

from __future__ import annotations

import base64
import html
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from apify_client import ApifyClient

from satchel.service.signing import expiring_record_signature, record_signature, storage_signature
from tests.conftest import Server, start_server, stop_server
from tests.harness.cli import run_cli, run_cli_here

ACCESSES = ("RESTRICTED", "ANYONE_WITH_ID_CAN_READ", "ANYONE_WITH_NAME_CAN_READ", "FOLLOW_USER_SETTING")
CALLERS = ("anonymous", "unknown-token", "stranger", "owner", "reader", "writer")
SECRET_VALUE = "the-secret-record-value-7f3a"
UNKNOWN_TOKEN = "apify_api_" + "u" * 36

# Each endpoint: what it needs (read, write or own), how to call it, and the status it answers on success.
ENDPOINTS: dict[str, tuple[str, str, int]] = {
    "get-store": ("read", "GET {store}", 200),
    "list-keys": ("read", "GET {store}/keys", 200),
    "get-record": ("read", "GET {store}/records/rec", 200),
    "head-record": ("read", "HEAD {store}/records/rec", 200),
    "download-records": ("read", "GET {store}/records", 200),
    "put-record": ("write", "PUT {store}/records/rec", 201),
    "post-record": ("write", "POST {store}/records/other", 201),
    "delete-record": ("write", "DELETE {store}/records/gone", 204),
    "update-store": ("own", "PUT {store}", 200),
    "list-shares": ("own", "GET {store}/shares", 200),
    "share": ("own", "PUT {store}/shares/stranger", 200),
    "delete-store": ("own", "DELETE {store}", 204),
    "rotate-key": ("own", "POST {store}/rotate-url-signing-secret-key", 200),
}
LEVELS = {"none": 0, "read": 1, "write": 2, "own": 3}


def cli(server: Server, *args: str) -> str:
    return run_cli(*args, data_dir=server.data_dir).stdout


@dataclass
class World:
    server: Server
    tokens: dict[str, str | None]
    owner_name: str
    http: httpx.Client  # no token of its own: each call says who it is


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = start_server(tmp_path_factory.mktemp("access") / "data")
    tokens: dict[str, str | None] = {"anonymous": None, "unknown-token": UNKNOWN_TOKEN, "owner": server.token}
    for name in ("stranger", "reader", "writer"):
        out = run_cli_here("users", "create", name, data_dir=server.data_dir)
        tokens[name] = out.split("API token: ")[1].strip()
    with httpx.Client(timeout=30) as http:
        yield World(server, tokens, "admin", http)
    stop_server(server)


def make_store(world: World, access: str) -> dict[str, Any]:
    """A named store of the owner's with records, shared with `reader` for reading, `writer` for writing."""
    with world.server.client() as owner:
        name = f"m-{uuid.uuid4().hex[:10]}"
        store = owner.post("/key-value-stores", params={"name": name}).json()["data"]
        assert (
            owner.put(f"/key-value-stores/{store['id']}", json={"generalAccess": access}).status_code == 200
        )
        for key in ("rec", "gone"):
            response = owner.put(f"/key-value-stores/{store['id']}/records/{key}", content=SECRET_VALUE)
            assert response.status_code == 201
        assert (
            owner.put(f"/key-value-stores/{store['id']}/shares/reader", json={"access": "READ"}).status_code
            == 200
        )
    run_cli_here("share", store["id"], "writer", "--write", data_dir=world.server.data_dir)
    return store  # type: ignore[no-any-return]


def expected_level(caller: str, access: str, *, by_name: bool) -> str:
    if caller == "owner":
        return "own"
    if caller in ("reader", "writer"):
        return {"reader": "read", "writer": "write"}[caller]
    # Anyone else gets what general access gives; FOLLOW_USER_SETTING follows the owner's RESTRICTED.
    if access == "ANYONE_WITH_NAME_CAN_READ" or (access == "ANYONE_WITH_ID_CAN_READ" and not by_name):
        return "read"
    return "none"


def expected(caller: str, access: str, endpoint: str, *, by_name: bool) -> tuple[int, str | None]:
    need, _, success = ENDPOINTS[endpoint]
    if caller == "unknown-token":
        return 401, "invalid-token"
    if caller == "anonymous" and need != "read":
        return 401, "token-not-provided"  # no change is open to anonymous callers, whatever the store
    have = expected_level(caller, access, by_name=by_name)
    if have == "none":
        return 404, "record-or-token-not-found" if caller == "anonymous" else "record-not-found"
    if LEVELS[have] < LEVELS[need]:
        return 403, "insufficient-permissions"
    return success, None


def call(world: World, caller: str, endpoint: str, store: dict[str, Any], *, by_name: bool) -> httpx.Response:
    ref = f"{world.owner_name}~{store['name']}" if by_name else store["id"]
    method, path = ENDPOINTS[endpoint][1].split(" ")
    url = world.server.api + path.format(store=f"/key-value-stores/{ref}")
    token = world.tokens[caller]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body: Any = None
    if endpoint == "update-store":
        body = {"title": "changed"}
    elif endpoint == "share":
        body = {"access": "READ"}
    if body is not None:
        return world.http.request(method, url, headers=headers, json=body)
    content = b"new value" if method in ("PUT", "POST") else None
    return world.http.request(method, url, headers=headers, content=content)


CASES = [
    (access, by_name, caller, endpoint)
    for access in ACCESSES
    for by_name in (False, True)
    for caller in CALLERS
    for endpoint in ENDPOINTS
]


@pytest.fixture(scope="module")
def stores(world: World) -> dict[str, dict[str, Any]]:
    return {access: make_store(world, access) for access in ACCESSES}


@pytest.mark.parametrize(
    ("access", "by_name", "caller", "endpoint"),
    CASES,
    ids=[f"{a}-{'name' if n else 'id'}-{c}-{e}" for a, n, c, e in CASES],
)
def test_matrix(
    world: World, stores: dict[str, dict[str, Any]], access: str, by_name: bool, caller: str, endpoint: str
) -> None:
    status, error_type = expected(caller, access, endpoint, by_name=by_name)
    # Sharing and deleting that succeed get a store of their own, so the shared ones keep their rights.
    fresh = status < 300 and endpoint in ("share", "delete-store")
    store = make_store(world, access) if fresh else stores[access]
    response = call(world, caller, endpoint, store, by_name=by_name)
    assert response.status_code == status, (response.status_code, response.text)
    if endpoint == "head-record" or status == 204:
        assert response.content == b""
    elif error_type is not None:
        assert response.json()["error"]["type"] == error_type
    if status >= 400:
        # Nothing of the store or its records leaks into a refusal.
        assert SECRET_VALUE not in response.text
        assert store["id"] not in response.text
        assert store["name"] not in response.text
    assert response.headers["x-ratelimit-limit"].isdigit()


def test_signing_secret_only_for_writers(world: World, stores: dict[str, dict[str, Any]]) -> None:
    store = stores["ANYONE_WITH_ID_CAN_READ"]
    seen = {}
    for caller in ("anonymous", "stranger", "reader", "writer", "owner"):
        token = world.tokens[caller]
        headers = {"authorization": f"Bearer {token}"} if token else {}
        data = httpx.get(f"{world.server.api}/key-value-stores/{store['id']}", headers=headers).json()["data"]
        keys = httpx.get(f"{world.server.api}/key-value-stores/{store['id']}/keys", headers=headers).json()[
            "data"
        ]
        signed_items = all("signature=" in item["recordPublicUrl"] for item in keys["items"])
        seen[caller] = ("urlSigningSecretKey" in data, "signature=" in data["keysPublicUrl"], signed_items)
    assert seen == {
        "anonymous": (False, False, False),
        "stranger": (False, False, False),
        "reader": (False, False, False),
        "writer": (True, True, True),
        "owner": (True, True, True),
    }


# --- signed public URLs, anonymous, on a restricted store


@pytest.fixture(scope="module")
def restricted(world: World) -> dict[str, Any]:
    with world.server.client() as owner:
        store = owner.post("/key-value-stores", params={"name": f"sig-{uuid.uuid4().hex[:8]}"}).json()["data"]
        for key in ("rec", "other"):
            owner.put(f"/key-value-stores/{store['id']}/records/{key}", content=SECRET_VALUE)
    return store  # type: ignore[no-any-return]


def _anon(world: World, method: str, path: str, **params: str) -> httpx.Response:
    return httpx.request(
        method, world.server.api + path, params=params, content=b"x" if method == "PUT" else None
    )


def test_signatures(world: World, restricted: dict[str, Any]) -> None:
    sid, secret = restricted["id"], restricted["urlSigningSecretKey"]
    base = f"/key-value-stores/{sid}"
    good = record_signature(secret, "rec")
    bad = good[:-1] + ("a" if good[-1] != "a" else "b")
    keys_sig = storage_signature(secret, sid)
    hour = int(time.time() * 1000) + 3_600_000
    mine = expiring_record_signature(secret, "rec", hour)
    expired = expiring_record_signature(secret, "rec", 1)
    forged = expiring_record_signature("wrong", "rec", hour)
    bad_sig = "invalid-signature"
    hidden = "record-or-token-not-found"  # what a missing store answers: a signature granting nothing is none
    cases: list[tuple[str, str, dict[str, str], int, str | None]] = [
        ("GET", f"{base}/records/rec", {}, 404, hidden),
        ("GET", f"{base}/records/rec", {"signature": good}, 200, None),
        ("HEAD", f"{base}/records/rec", {"signature": good}, 200, None),
        ("GET", f"{base}/records/rec", {"signature": bad}, 404, hidden),
        ("GET", f"{base}/records/other", {"signature": good}, 404, hidden),
        ("GET", f"{base}/records/rec", {"signature": keys_sig}, 404, hidden),
        ("GET", f"{base}/records/rec", {"signature": mine}, 200, None),
        ("GET", f"{base}/records/other", {"signature": mine}, 404, hidden),
        ("GET", f"{base}/records/rec", {"signature": expired}, 403, bad_sig),
        ("GET", f"{base}/records/rec", {"signature": forged}, 404, hidden),
        ("PUT", f"{base}/records/rec", {"signature": good}, 401, "token-not-provided"),
        ("DELETE", f"{base}/records/rec", {"signature": good}, 401, "token-not-provided"),
        ("GET", base, {"signature": keys_sig}, 404, hidden),
        ("GET", f"{base}/keys", {"signature": keys_sig}, 200, None),
        ("GET", f"{base}/keys", {"signature": storage_signature(secret, sid).rstrip("=")}, 200, None),
        ("GET", f"{base}/keys", {"signature": storage_signature(secret, sid, hour)}, 200, None),
        ("GET", f"{base}/keys", {"signature": storage_signature(secret, sid, 1_000)}, 403, bad_sig),
        ("GET", f"{base}/keys", {"signature": storage_signature("wrong", sid)}, 404, hidden),
        ("GET", f"{base}/keys", {"signature": storage_signature("wrong", sid, 1_000)}, 404, hidden),
        ("GET", f"{base}/keys", {"signature": storage_signature(secret, "someOtherStoreId")}, 404, hidden),
        ("GET", f"{base}/keys", {"signature": good}, 404, hidden),
        ("GET", f"{base}/records", {"signature": keys_sig}, 200, None),
        ("GET", f"{base}/records", {"signature": "garbage!"}, 404, hidden),
    ]  # fmt: skip
    for method, path, params, status, error_type in cases:
        response = _anon(world, method, path, **params)
        assert response.status_code == status, (method, path, params, response.text)
        if error_type is not None:
            assert response.json()["error"]["type"] == error_type, (path, params)
        if status == 200 and method == "GET" and "/records/" in path:
            assert response.text == SECRET_VALUE
    refused = _anon(world, "GET", f"{base}/keys", signature=storage_signature(secret, sid, 1_000))
    assert "expired" in refused.json()["error"]["message"]


def test_no_record_key_signs_as_its_stores_listing(world: World, restricted: dict[str, Any]) -> None:
    """A record is signed by its bare key, and a listing by the HMAC of `0.{expiresAtMs}.{storeId}` with the
    same secret: a record keyed so would hand out, with its link, every key and a ZIP of every record."""
    sid, secret = restricted["id"], restricted["urlSigningSecretKey"]
    with world.server.client() as owner:
        for key in (f"0.0.{sid}", f"0.1893456000000.{sid}"):
            refused = owner.put(f"/key-value-stores/{sid}/records/{key}", content=b"x")
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["type"] == "invalid-record-key"
            assert "list of keys" in refused.json()["error"]["message"]
        # What such a link would have opened, had the record been taken: the whole listing.
        forged = base64.urlsafe_b64encode(f"0.0.{record_signature(secret, f'0.0.{sid}')}".encode()).decode()
        assert _anon(world, "GET", f"/key-value-stores/{sid}/keys", signature=forged).status_code == 200
        # Keys of that shape for another store, or not quite that shape, are ordinary keys.
        for key in ("0.0.someOtherStoreId", f"0.x.{sid}", f"1.0.{sid}", f"0.0.{sid}x"):
            assert owner.put(f"/key-value-stores/{sid}/records/{key}", content=b"x").status_code == 201, key
            assert owner.delete(f"/key-value-stores/{sid}/records/{key}").status_code == 204


def test_official_client_public_urls_work_without_a_token(world: World, restricted: dict[str, Any]) -> None:
    apify = ApifyClient(
        world.server.token, api_url=world.server.base_url, api_public_url=world.server.base_url
    )
    client = apify.key_value_store(restricted["id"])
    record_url = client.get_record_public_url("rec")
    assert "signature=" in record_url
    assert httpx.get(record_url).text == SECRET_VALUE
    keys_url = client.create_keys_public_url(expires_in=timedelta(minutes=10))
    listed = httpx.get(keys_url).json()["data"]
    assert [item["key"] for item in listed["items"]] == ["other", "rec"]
    # A listing's signature grants the listing, nothing more: its record URLs are not signed for this caller.
    assert "signature=" not in listed["items"][0]["recordPublicUrl"]
    assert httpx.get(listed["items"][0]["recordPublicUrl"]).status_code == 404


# --- listing by ownership, and the user's default access


def test_ownership_filter(world: World, stores: dict[str, dict[str, Any]]) -> None:
    def names(caller: str, **params: str) -> set[str]:
        headers = {"authorization": f"Bearer {world.tokens[caller]}"}
        data = httpx.get(
            f"{world.server.api}/key-value-stores", headers=headers, params={"limit": "1000", **params}
        ).json()["data"]
        assert data["count"] == len(data["items"]) <= data["total"]
        return {item["name"] for item in data["items"]}

    shared = {store["name"] for store in stores.values()}
    assert shared <= names("reader", ownership="sharedWithMe")
    assert shared <= names("reader")
    assert not names("reader", ownership="ownedByMe")
    assert not names("stranger") & shared
    assert shared <= names("owner", ownership="ownedByMe")
    assert not names("owner", ownership="sharedWithMe")
    bad = httpx.get(
        f"{world.server.api}/key-value-stores",
        headers={"authorization": f"Bearer {world.tokens['reader']}"},
        params={"ownership": "everything"},
    )
    assert bad.status_code == 400


def test_follow_user_setting_tracks_the_owner_default(world: World) -> None:
    store = make_store(world, "FOLLOW_USER_SETTING")
    url = f"{world.server.api}/key-value-stores/{store['id']}/records/rec"
    assert httpx.get(url).status_code == 404
    cli(world.server, "users", "set-access", "admin", "ANYONE_WITH_ID_CAN_READ")
    try:
        # The running server follows a change made by the CLI at once.
        assert httpx.get(url).text == SECRET_VALUE
        by_name = f"{world.server.api}/key-value-stores/admin~{store['name']}/records/rec"
        assert httpx.get(by_name).status_code == 404
    finally:
        cli(world.server, "users", "set-access", "admin", "RESTRICTED")
    assert httpx.get(url).status_code == 404


def test_share_revoked_takes_effect_at_once(world: World) -> None:
    store = make_store(world, "RESTRICTED")
    url = f"{world.server.api}/key-value-stores/{store['id']}/records/rec"
    reader = {"authorization": f"Bearer {world.tokens['reader']}"}
    assert httpx.get(url, headers=reader).status_code == 200
    with world.server.client() as owner:
        shares = owner.get(f"/key-value-stores/{store['id']}/shares").json()["data"]
        assert {(s["username"], s["access"]) for s in shares["items"]} == {
            ("reader", "READ"),
            ("writer", "WRITE"),
        }
        assert owner.delete(f"/key-value-stores/{store['id']}/shares/reader").status_code == 204
        assert (
            owner.put(f"/key-value-stores/{store['id']}/shares/nobody", json={"access": "READ"}).status_code
            == 404
        )
        assert (
            owner.put(f"/key-value-stores/{store['id']}/shares/admin", json={"access": "READ"}).status_code
            == 400
        )
        bad = owner.put(f"/key-value-stores/{store['id']}/shares/reader", json={"access": "ADMIN"})
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid-value"
    assert httpx.get(url, headers=reader).status_code == 404


def test_users_me_and_public_profile(world: World) -> None:
    me = httpx.get(
        f"{world.server.api}/users/me", headers={"authorization": f"Bearer {world.tokens['reader']}"}
    ).json()["data"]
    assert me["username"] == "reader"
    public = httpx.get(f"{world.server.api}/users/{me['id']}").json()["data"]
    assert public == {"username": "reader", "profile": {}}
    assert httpx.get(f"{world.server.api}/users/reader").json()["data"]["username"] == "reader"
    assert httpx.get(f"{world.server.api}/users/nobody-here").status_code == 404
    assert ApifyClient(api_url=world.server.base_url).user("nobody-here").get() is None  # absent: no error
    assert httpx.get(f"{world.server.api}/users/me").status_code == 401
    # An unknown name is quoted cut short, whatever its length: an error never echoes 20 KB of a path.
    name = "a" * 20_000
    long = httpx.get(f"{world.server.api}/users/{name}")
    assert long.status_code == 404
    assert "(20000 characters)" in long.json()["error"]["message"]
    assert len(long.content) < 500


# --- revoking a share, and rotating the URL signing secret


def _rotate(world: World, store_id: str, caller: str) -> httpx.Response:
    token = world.tokens[caller]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    url = f"{world.server.api}/key-value-stores/{store_id}/rotate-url-signing-secret-key"
    return httpx.post(url, headers=headers)


def _expiry(url: str) -> int:
    """The expiry (epoch ms) a signed URL of the storage form carries."""
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    return int(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)).decode().split(".")[1])


def test_revoking_a_share_cuts_the_token_at_once_and_signed_urls_only_once_rotated(world: World) -> None:
    store = make_store(world, "RESTRICTED")
    api = f"{world.server.api}/key-value-stores/{store['id']}"
    writer = {"authorization": f"Bearer {world.tokens['writer']}"}
    # What a writer can keep: the store's signed URLs, its keys' signed URLs, and the secret itself.
    seen = httpx.get(api, headers=writer).json()["data"]
    listed = httpx.get(f"{api}/keys", headers=writer).json()["data"]["items"]
    secret = seen["urlSigningSecretKey"]
    kept = [seen["keysPublicUrl"], seen["recordsPublicUrl"], *(item["recordPublicUrl"] for item in listed)]
    kept.append(f"{api}/records/rec?signature={record_signature(secret, 'rec')}")
    cli(world.server, "share", store["id"], "writer", "--revoke")
    assert httpx.get(api, headers=writer).status_code == 404
    for url in kept:
        assert httpx.get(url).status_code == 200, url  # as documented: revoking a share leaves these
    # Rotating is the owner's alone.
    assert _rotate(world, store["id"], "reader").status_code == 403
    assert _rotate(world, store["id"], "writer").json()["error"]["type"] == "record-not-found"
    assert _rotate(world, store["id"], "stranger").status_code == 404
    assert _rotate(world, store["id"], "anonymous").status_code == 401
    rotated = _rotate(world, store["id"], "owner")
    assert rotated.status_code == 200, rotated.text
    data = rotated.json()["data"]
    assert data["id"] == store["id"]
    assert data["urlSigningSecretKey"] not in (secret, None)
    for url in kept:
        response = httpx.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["type"] == "record-or-token-not-found"
    assert httpx.get(data["keysPublicUrl"]).status_code == 200
    fresh = f"{api}/records/rec?signature={record_signature(data['urlSigningSecretKey'], 'rec')}"
    assert httpx.get(fresh).text == SECRET_VALUE
    # The reader kept their share, and sees the store as before, without the new secret.
    reader = httpx.get(api, headers={"authorization": f"Bearer {world.tokens['reader']}"}).json()["data"]
    assert "urlSigningSecretKey" not in reader


def test_rotating_from_the_cli_reaches_the_running_server_at_once(world: World) -> None:
    store = make_store(world, "RESTRICTED")
    url = f"{world.server.api}/key-value-stores/{store['id']}/records/rec"
    signature = record_signature(store["urlSigningSecretKey"], "rec")
    assert httpx.get(url, params={"signature": signature}).text == SECRET_VALUE
    out = cli(world.server, "rotate-signing-key", f"admin~{store['name']}")
    assert "new URL signing secret key" in out
    refused = httpx.get(url, params={"signature": signature})
    assert refused.status_code == 404
    # Said in words the link's holder can act on, the same as for a store that is not there.
    assert "signing key was replaced since it was made" in refused.json()["error"]["message"]
    assert httpx.get(store["keysPublicUrl"]).status_code == 404


def _public_url(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"SATCHEL_PUBLIC_URL": world.server.base_url}
    return run_cli("public-url", *args, data_dir=world.server.data_dir, env=env, ok=None)


def test_cli_hands_out_urls_that_expire(world: World) -> None:
    store = make_store(world, "RESTRICTED")
    now = int(time.time() * 1000)
    done = _public_url(world, store["id"])
    assert done.returncode == 0, done.stderr
    keys_url, zip_url = done.stdout.split()
    assert "expires" in done.stderr
    for url in (keys_url, zip_url):
        assert now + 23 * 3_600_000 < _expiry(url) < now + 25 * 3_600_000
    assert [item["key"] for item in httpx.get(keys_url).json()["data"]["items"]] == ["gone", "rec"]
    assert httpx.get(zip_url).headers["content-type"] == "application/zip"
    record = _public_url(world, f"admin~{store['name']}", "rec", "--expires-in", "10m")
    assert record.returncode == 0, record.stderr
    (record_url,) = record.stdout.split()
    assert now + 9 * 60_000 < _expiry(record_url) < now + 11 * 60_000
    assert httpx.get(record_url).text == SECRET_VALUE
    other = record_url.replace("/records/rec?", "/records/gone?")
    assert httpx.get(other).status_code == 404  # a record's link reads that record only
    # Only when asked: a link that never expires, in the clients' own form.
    forever = _public_url(world, store["id"], "rec", "--expires-in", "never")
    signature = parse_qs(urlsplit(forever.stdout.strip()).query)["signature"][0]
    assert signature == record_signature(store["urlSigningSecretKey"], "rec")
    short = _public_url(world, store["id"], "rec", "--expires-in", "1s")
    time.sleep(1.2)
    expired = httpx.get(short.stdout.strip())
    assert expired.status_code == 403
    assert "expired" in expired.json()["error"]["message"]
    assert _public_url(world, store["id"], "--expires-in", "soon").returncode != 0
    # Rotation ends them before their time.
    cli(world.server, "rotate-signing-key", store["id"])
    assert httpx.get(keys_url).status_code == 404
    assert httpx.get(record_url).status_code == 404


def test_cli_links_point_at_the_address_the_server_answers_on(world: World) -> None:
    """The server runs on a port of the test's choosing, not the default: links made beside it, with no
    setting naming the address, still lead to it; a setting that names one wins."""
    store = make_store(world, "RESTRICTED")
    served = run_cli("public-url", store["id"], "rec", data_dir=world.server.data_dir, drop=("SATCHEL_",))
    (url,) = served.stdout.split()
    assert url.startswith(f"{world.server.base_url}/v2/key-value-stores/{store['id']}/records/rec?"), url
    assert httpx.get(url).text == SECRET_VALUE
    env = {"SATCHEL_PORT": "9"}
    named = run_cli(
        "public-url", store["id"], "rec", data_dir=world.server.data_dir, env=env, drop=("SATCHEL_",)
    )
    assert named.stdout.startswith("http://127.0.0.1:9/v2/"), named.stdout


def test_console_hands_out_expiring_links_and_rotates_the_key(world: World) -> None:
    store = make_store(world, "RESTRICTED")
    page_url = f"{world.server.base_url}/console/key-value-stores/{store['id']}"
    with httpx.Client(base_url=world.server.base_url, timeout=30) as browser:
        signed_in = browser.post("/console/login", data={"token": world.server.token})
        assert signed_in.status_code == 303, signed_in.text
        now = int(time.time() * 1000)
        zip_url = html.unescape(
            re.findall(r'href="([^"]+/records\?signature=[^"]+)"', browser.get(page_url).text)[0]
        )
        assert now + 23 * 3_600_000 < _expiry(zip_url) < now + 25 * 3_600_000
        assert httpx.get(zip_url).headers["content-type"] == "application/zip"
        record_page = browser.get(f"{page_url}/records/rec").text
        record_url = html.unescape(re.findall(r'id="public-url">([^<]+)<', record_page)[0])
        assert now + 23 * 3_600_000 < _expiry(record_url) < now + 25 * 3_600_000
        assert httpx.get(record_url).text == SECRET_VALUE
        rotated = browser.post(f"{page_url}/settings", data={"rotateSigningKey": "1"})
        assert rotated.status_code == 303
        assert rotated.headers["location"].endswith("#signing")
        assert httpx.get(zip_url).status_code == 404
        assert httpx.get(record_url).status_code == 404
        with world.server.client() as owner:
            now_secret = owner.get(f"/key-value-stores/{store['id']}").json()["data"]["urlSigningSecretKey"]
        assert now_secret != store["urlSigningSecretKey"]
        fresh = html.unescape(
            re.findall(r'id="public-url">([^<]+)<', browser.get(f"{page_url}/records/rec").text)[0]
        )
        assert httpx.get(fresh).text == SECRET_VALUE
