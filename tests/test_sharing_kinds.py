"""Datasets and request queues are shared exactly as key-value stores are: the owner gives another user READ
or WRITE below `/shares`, the grant applies at once, and taking it back hides the storage again.

In-process, on every engine combination.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server, every_engine

server = every_engine(in_process=True)

# Per kind: the collection, a read that READ allows, and a write that needs WRITE.
KINDS = {
    "datasets": ("GET", "items", None, "POST", "items", [{"a": 1}]),
    "request-queues": (
        "GET", "head", None, "POST", "requests", {"uniqueKey": "http://x.test/1", "url": "http://x.test/1"},
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def bob(server: Server) -> Iterator[httpx.Client]:
    assert server.app is not None
    _, token = server.app.run(server.app.app.services.users.create("bob"))
    with server.client(token) as client:
        yield client


@pytest.mark.parametrize("kind", KINDS)
def test_a_share_opens_a_storage_to_another_user_and_its_revocation_closes_it(
    server: Server, bob: httpx.Client, kind: str
) -> None:
    read_method, read_path, _, write_method, write_path, write_body = KINDS[kind]
    with server.client() as owner:
        made = owner.post(f"/{kind}", params={"name": f"shared-{kind}"})
        assert made.status_code == 201, made.text
        base = f"/{kind}/{made.json()['data']['id']}"

        def read() -> httpx.Response:
            return bob.request(read_method, f"{base}/{read_path}")

        def write() -> httpx.Response:
            return bob.request(write_method, f"{base}/{write_path}", json=write_body)

        assert read().status_code == 404
        assert write().status_code == 404
        granted = owner.put(f"{base}/shares/bob", json={"access": "READ"})
        assert granted.status_code == 200, granted.text
        assert granted.json()["data"]["access"] == "READ"
        assert read().status_code == 200
        refused = write()
        assert refused.status_code == 403
        assert refused.json()["error"]["type"] == "insufficient-permissions"
        assert owner.put(f"{base}/shares/bob", json={"access": "WRITE"}).status_code == 200
        assert write().status_code == 201
        listed = owner.get(f"{base}/shares").json()["data"]
        assert [(s["username"], s["access"]) for s in listed["items"]] == [("bob", "WRITE")]
        # Only the owner manages shares.
        assert bob.get(f"{base}/shares").status_code == 403
        assert owner.delete(f"{base}/shares/bob").status_code == 204
        assert read().status_code == 404
        # Shared storages appear in the other user's list of that kind only.
        assert owner.put(f"{base}/shares/bob", json={"access": "READ"}).status_code == 200
        for other in KINDS:
            names = [i["name"] for i in bob.get(f"/{other}", params={"ownership": "sharedWithMe"}).json()[
                "data"
            ]["items"]]  # fmt: skip
            assert (f"shared-{kind}" in names) is (other == kind)
