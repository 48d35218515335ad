"""No existence oracle: a store the caller may not read answers exactly as a missing one.

For every endpoint, every way of naming a store (id, `username~name`, `~name`, their percent-encoded forms),
with and without a token and with every kind of signature that grants nothing (forged, made for another
store, made with another store's secret, expired but forged), the answer about a private store that exists is
byte for byte the answer about one that does not: the same status, headers and body. Otherwise anyone could
learn which private store ids and names exist.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from urllib.parse import quote

import orjson
import pytest

from satchel.service.signing import expiring_record_signature, record_signature, storage_signature
from tests.conftest import Server, every_engine

server = every_engine(in_process=True)

OWNER = "admin"
API = "/v2/key-value-stores"
ID_CHARS = string.ascii_letters + string.digits
FUTURE_MS = 4_102_444_800_000  # 2100
# Each endpoint: method, the path after the store, and a body.
ENDPOINTS: dict[str, tuple[str, str, bytes | None]] = {
    "get-store": ("GET", "", None),
    "update-store": ("PUT", "", b'{"title": "mine now"}'),
    "delete-store": ("DELETE", "", None),
    "list-keys": ("GET", "/keys", None),
    "download-records": ("GET", "/records", None),
    "get-record": ("GET", "/records/rec", None),
    "head-record": ("HEAD", "/records/rec", None),
    "put-record": ("PUT", "/records/rec", b"overwritten"),
    "post-record": ("POST", "/records/rec", b"overwritten"),
    "delete-record": ("DELETE", "/records/rec", None),
    "list-shares": ("GET", "/shares", None),
    "share": ("PUT", "/shares/stranger", b'{"access": "READ"}'),
    "unshare": ("DELETE", "/shares/stranger", None),
    "rotate-key": ("POST", "/rotate-url-signing-secret-key", None),
}
CALLERS = ("anonymous", "stranger", "stranger-in-query", "unknown-token")
# The endpoints that read a signature (a signed URL reads a store's keys and records) are asked with every
# kind that grants nothing. The others never read one: asked without, and with the likeliest to be mistaken
# for a grant (made with a real secret, for this store's id), it changes nothing.
SIGNED = frozenset({"list-keys", "download-records", "get-record", "head-record"})
UNSIGNED_KINDS = ("none", "other-secret-listing")


@dataclass
class World:
    server: Server
    hidden: dict[str, str]  # RESTRICTED: private however it is named
    by_id_only: dict[str, str]  # ANYONE_WITH_ID_CAN_READ: private when named by name
    stranger_token: str
    signatures: dict[str, str]  # name -> a signature that grants nothing on `hidden`


@pytest.fixture(scope="module")
def world(server: Server) -> World:
    app = server.app
    assert app is not None
    _, stranger_token = app.run(app.app.services.users.create("stranger"))
    with server.client() as owner:
        hidden = owner.post("/key-value-stores", params={"name": "hidden-store"}).json()["data"]
        owner.put(f"/key-value-stores/{hidden['id']}/records/rec", content=b"secret")
        by_id = owner.post("/key-value-stores", params={"name": "by-id-store"}).json()["data"]
        owner.put(f"/key-value-stores/{by_id['id']}", json={"generalAccess": "ANYONE_WITH_ID_CAN_READ"})
        owner.put(f"/key-value-stores/{by_id['id']}/records/rec", content=b"secret")
    with server.client(stranger_token) as stranger:
        theirs = stranger.post("/key-value-stores", params={"name": "theirs"}).json()["data"]
    their_secret = theirs["urlSigningSecretKey"]
    signatures = {
        "none": "",
        "forged-record": "pcVagAsudj8dFqdlg7mG",
        "forged-listing": storage_signature("not-the-secret", hidden["id"]),
        "forged-expired-listing": storage_signature("not-the-secret", hidden["id"], 1_000),
        "forged-expiring-record": expiring_record_signature("not-the-secret", "rec", FUTURE_MS),
        "other-store-record": record_signature(their_secret, "rec"),
        "other-store-listing": storage_signature(their_secret, theirs["id"]),
        "other-secret-listing": storage_signature(their_secret, hidden["id"]),
        "garbage": "%%%not base64\x00",
        "long": "a" * 4000,
    }
    return World(server, hidden, by_id, stranger_token, signatures)


def _namings(store: dict[str, str], *, by_id: bool = True) -> dict[str, str]:
    """Every way of naming the store in a request path, already percent-encoded where it says so."""
    sid, name = store["id"], store["name"]
    names = {
        "owner~name": f"{OWNER}~{name}",
        "owner%7Ename": f"{OWNER}%7E{name}",
        "owner%7ename": f"{OWNER}%7e{name}",
        "owner%2Fname": f"{OWNER}%2F{name}",
        "%-encoded-owner~name": "".join(f"%{ord(c):02X}" for c in f"{OWNER}~{name}"),
        "~name": f"~{name}",
        "%7Ename": f"%7E{name}",
    }
    if by_id:
        names["id"] = sid
        names["%-encoded-id"] = f"%{ord(sid[0]):02X}{sid[1:]}"
    return names


def _missing() -> dict[str, str]:
    """A store that does not exist: an id of the same length, and a name its owner never used."""
    return {"id": "".join(secrets.choice(ID_CHARS) for _ in range(17)), "name": "absent-store"}


def _ask(
    world: World, method: str, path: str, caller: str, body: bytes | None
) -> tuple[int, dict[str, str], bytes]:
    app = world.server.app
    assert app is not None
    headers: list[tuple[bytes, bytes]] = []
    if caller == "stranger":
        headers.append((b"authorization", f"Bearer {world.stranger_token}".encode()))
    elif caller == "unknown-token":
        headers.append((b"authorization", b"Bearer apify_api_" + b"u" * 36))
    elif caller == "stranger-in-query":
        path += ("&" if "?" in path else "?") + f"token={world.stranger_token}"
    if body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    status, response_headers, content = app.raw(method, path.encode("latin-1"), headers, body or b"")
    response_headers.pop("date", None)
    response_headers.pop("x-request-id", None)  # a new one for every request, whatever it asks about
    return status, response_headers, content


def test_a_private_store_answers_as_a_missing_one(world: World) -> None:
    missing = _missing()
    pairs = [
        (naming, private_ref, _namings(missing)[naming])
        for naming, private_ref in _namings(world.hidden).items()
    ]
    pairs += [
        (f"by-id-store {naming}", private_ref, _namings(missing, by_id=False)[naming])
        for naming, private_ref in _namings(world.by_id_only, by_id=False).items()
    ]
    # A missing owner, too: `ghost~hidden-store` answers as `admin~hidden-store` does to those who may not.
    pairs.append(("missing owner", f"{OWNER}~{world.hidden['name']}", f"ghost~{world.hidden['name']}"))
    differences = []
    statuses = set()
    for endpoint, (method, suffix, body) in ENDPOINTS.items():
        kinds = world.signatures if endpoint in SIGNED else {k: world.signatures[k] for k in UNSIGNED_KINDS}
        for naming, private_ref, missing_ref in pairs:
            for caller in CALLERS:
                for signature_name, signature in kinds.items():
                    query = f"?signature={quote(signature, safe='')}" if signature else ""
                    private = _ask(world, method, f"{API}/{private_ref}{suffix}{query}", caller, body)
                    absent = _ask(world, method, f"{API}/{missing_ref}{suffix}{query}", caller, body)
                    statuses.add(private[0])
                    if private != absent:
                        differences.append((endpoint, naming, caller, signature_name, private, absent))
    assert differences == [], (len(differences), differences[:3])
    # Not vacuous: every answer was a refusal, and nothing was changed by any of them.
    assert statuses == {401, 404}, statuses
    _check_untouched(world)
    _check_genuine_signatures_read(world)


def test_the_refusals_name_nothing(world: World) -> None:
    hidden = world.hidden["id"]
    status, _, body = _ask(world, "GET", f"{API}/{hidden}/keys?signature=x", "anonymous", None)
    assert status == 404
    assert orjson.loads(body) == {
        "error": {
            "type": "record-or-token-not-found",
            "message": "Key-value store was not found. (The link's signature does not grant reading it: the"
            " link was changed, or the store's URL signing key was replaced since it was made.)",
        }
    }
    status, _, body = _ask(world, "GET", f"{API}/{hidden}/keys", "anonymous", None)
    assert orjson.loads(body)["error"]["message"] == (
        "Key-value store was not found. (No token was sent; private stores need one.)"
    )
    status, _, body = _ask(world, "GET", f"{API}/{hidden}/records/rec?signature=x", "stranger", None)
    assert status == 404
    assert orjson.loads(body)["error"] == {
        "type": "record-not-found",
        "message": "Key-value store was not found. (The link's signature does not grant reading it: the link"
        " was changed, or the store's URL signing key was replaced since it was made.)",
    }
    status, _, body = _ask(world, "GET", f"{API}/{hidden}/records/rec", "stranger", None)
    assert orjson.loads(body)["error"]["message"] == "Key-value store was not found."


def _check_untouched(world: World) -> None:
    with world.server.client() as owner:
        for store in (world.hidden, world.by_id_only):
            data = owner.get(f"/key-value-stores/{store['id']}").json()["data"]
            assert data["title"] is None
            assert data["urlSigningSecretKey"] == store["urlSigningSecretKey"]
            assert owner.get(f"/key-value-stores/{store['id']}/records/rec").content == b"secret"
            assert owner.get(f"/key-value-stores/{store['id']}/shares").json()["data"]["items"] == []


def _check_genuine_signatures_read(world: World) -> None:
    """The other side: the signatures the store's writers hand out keep working for anyone."""
    hidden = world.hidden
    secret = hidden["urlSigningSecretKey"]
    record = record_signature(secret, "rec")
    listing = quote(storage_signature(secret, hidden["id"]), safe="")
    expired = quote(storage_signature(secret, hidden["id"], 1_000), safe="")
    for ref in (hidden["id"], f"{OWNER}~{hidden['name']}"):
        status, _, body = _ask(world, "GET", f"{API}/{ref}/records/rec?signature={record}", "anonymous", None)
        assert (status, body) == (200, b"secret")
        assert _ask(world, "GET", f"{API}/{ref}/keys?signature={listing}", "stranger", None)[0] == 200
        # A genuine listing signature that has expired says so: only a holder of a once-valid link sees it.
        status, _, body = _ask(world, "GET", f"{API}/{ref}/keys?signature={expired}", "anonymous", None)
        assert status == 403
        assert "expired" in orjson.loads(body)["error"]["message"]
