"""`PUT /v2/acts/{actorId}/runs/last`: it changes the run the last-run GET finds (its `status` and `origin`
filters included), as the run's own PUT does: the same body rules, errors and answer. The official client's
`actor(...).last_run().update(...)` sends it; on the session's server.
"""

from __future__ import annotations

import asyncio

import pytest
from apify_client import ApifyClient, ApifyClientAsync

from tests.conftest import Server
from tests.harness.cli import new_user
from tests.harness.envelope import answer, assert_error, data_of, unique
from tests.harness.runs import start_run


@pytest.fixture(scope="module")
def stranger(server: Server) -> str:
    """The token of a user who owns no Actor of the admin's."""
    return new_user(server.data_dir, unique("stranger"))


def test_the_official_client_updates_the_last_run(server: Server) -> None:
    actor = unique("last-update")
    with server.client() as http:
        first = start_run(http, actor, origin="CLI")
        second = start_run(http, actor)
    client = ApifyClient(server.token, api_url=server.base_url).actor(f"~{actor}")
    changed = client.last_run().update(status_message="halfway", is_status_message_terminal=True)
    assert (changed.id, changed.status_message, changed.is_status_message_terminal) == (
        second["id"],
        "halfway",
        True,
    )
    by_origin = client.last_run(origin="CLI", status="RUNNING").update(
        general_access="ANYONE_WITH_ID_CAN_READ"
    )
    assert (by_origin.id, by_origin.general_access) == (first["id"], "ANYONE_WITH_ID_CAN_READ")
    with server.client() as http:
        assert data_of(http.get(f"/actor-runs/{first['id']}"))["statusMessage"] is None
        assert data_of(http.get(f"/actor-runs/{second['id']}"))["statusMessage"] == "halfway"


def test_the_async_client_updates_the_last_run(server: Server) -> None:
    actor = unique("last-update-async")
    with server.client() as http:
        run = start_run(http, actor)
    last = ApifyClientAsync(server.token, api_url=server.base_url).actor(f"~{actor}").last_run()
    changed = asyncio.run(last.update(status_message="from async"))
    assert (changed.id, changed.status_message) == (run["id"], "from async")


def test_the_answer_is_the_runs_own_put(server: Server) -> None:
    actor = unique("last-answer")
    with server.client() as http:
        run = start_run(http, actor)
        body = {"status": "SUCCEEDED", "exitCode": 0, "statusMessage": "done", "runId": "ignored"}
        changed = data_of(http.put(f"/acts/~{actor}/runs/last", json=body))
        assert (changed["id"], changed["status"], changed["exitCode"]) == (run["id"], "SUCCEEDED", 0)
        assert changed["finishedAt"] is not None  # a finished status sets it, as on the run's PUT
        assert changed == data_of(http.get(f"/actor-runs/{run['id']}"))
        assert changed == data_of(http.put(f"/actor-runs/{run['id']}", json={}))
        assert changed == data_of(http.put(f"/acts/{run['actId']}/runs/last", content=b""))
        assert changed == data_of(http.put(f"/actors/{run['actId']}/runs/last", json={}))


def test_the_filters_choose_the_run_and_none_is_404(server: Server) -> None:
    actor = unique("last-filters")
    with server.client() as http:
        cli = start_run(http, actor, origin="CLI")
        running = start_run(http, actor)
        aborted = start_run(http, actor)
        data_of(http.post(f"/actor-runs/{aborted['id']}/abort"))
        last = f"/acts/{cli['actId']}/runs/last"
        for params, expected in (
            ({}, aborted),
            ({"origin": "CLI"}, cli),
            ({"status": "RUNNING"}, running),
            ({"status": "RUNNING", "origin": "CLI"}, cli),
            ({"status": "RUNNING", "origin": "API"}, running),
            ({"status": "ABORTED,FAILED"}, aborted),
        ):
            changed = data_of(http.put(last, params=params, json={"statusMessage": str(params)}))
            assert (changed["id"], changed["statusMessage"]) == (expected["id"], str(params))
        assert_error(http.put(last, params={"status": "SUCCEEDED"}, json={}), 404, "record-not-found")
        assert_error(http.put(last, params={"origin": "WEB"}, json={}), 404, "record-not-found")
        assert_error(http.put(last, params={"status": "DONE"}, json={}), 400, "invalid-value")
        assert_error(http.put(last, params={"origin": "MARS"}, json={}), 400, "invalid-value")
        assert_error(http.put("/acts/nosuchactor/runs/last", json={}), 404, "record-not-found")
        assert_error(http.put(f"/acts/~{unique('never-run')}/runs/last", json={}), 404, "record-not-found")
        # The filters that found nothing changed nothing.
        assert data_of(http.get(f"/actor-runs/{running['id']}"))["statusMessage"] == str(
            {"status": "RUNNING", "origin": "API"}
        )


BAD_BODIES: list[tuple[bytes, dict[str, str]]] = [
    (b"{", {}),
    (b"[1]", {}),
    (b'"x"', {}),
    (b'{"status": "DONE"}', {}),
    (b'{"status": "succeeded"}', {}),
    (b'{"exitCode": "1"}', {}),
    (b'{"exitCode": 1.5}', {}),
    (b'{"statusMessage": 5}', {}),
    (b'{"isStatusMessageTerminal": "yes"}', {}),
    (b'{"generalAccess": "EVERYONE"}', {}),
    (b'{"finishedAt": "yesterday"}', {}),
    (b"{}", {"content-encoding": "zstd"}),
    (b"\x1f\x8b not gzip", {"content-encoding": "gzip"}),
]


@pytest.mark.parametrize(("body", "headers"), BAD_BODIES, ids=[repr(b[:20]) for b, _ in BAD_BODIES])
def test_a_bad_body_is_refused_as_by_the_runs_put(
    server: Server, body: bytes, headers: dict[str, str]
) -> None:
    actor = unique("last-bad")
    with server.client() as http:
        run = start_run(http, actor)
        sent = {"content-type": "application/json", **headers}
        through_last = http.put(f"/acts/~{actor}/runs/last", content=body, headers=sent)
        status, error_type = answer(through_last)
        assert 400 <= status < 500
        assert (status, error_type) == answer(
            http.put(f"/actor-runs/{run['id']}", content=body, headers=sent)
        )
        # With no such run: what the run's PUT answers for a run that is not there (a body that is no JSON
        # object is refused first, a field only once the run is found).
        none = answer(http.put(f"/acts/~{actor}/runs/last?status=FAILED", content=body, headers=sent))
        assert none == answer(http.put("/actor-runs/nosuchrun", content=body, headers=sent))
        assert data_of(http.get(f"/actor-runs/{run['id']}")) == run


def test_a_user_without_access_gets_the_gets_answer(server: Server, stranger: str) -> None:
    actor = unique("last-private")
    with server.client() as http:
        run = start_run(http, actor)
        admin = data_of(http.get("/users/me"))["username"]
        # Even a run anyone with its id may read is the owner's to change, and its Actor is the owner's own.
        data_of(http.put(f"/actor-runs/{run['id']}", json={"generalAccess": "ANYONE_WITH_ID_CAN_READ"}))
    refs = [run["actId"], f"{admin}~{actor}", f"~{actor}"]
    with server.client(stranger) as other, server.anonymous() as nobody:
        for http in (other, nobody):
            for ref in refs:
                for spelling in ("acts", "actors"):
                    path = f"/{spelling}/{ref}/runs/last"
                    got = answer(http.get(path))
                    assert got[0] in (401, 404), got
                    assert answer(http.put(path, json={"statusMessage": "not yours"})) == got
                    assert answer(http.put(path, params={"status": "RUNNING"}, json={})) == answer(
                        http.get(path, params={"status": "RUNNING"})
                    )
    with server.client() as http:
        assert data_of(http.get(f"/actor-runs/{run['id']}"))["statusMessage"] is None
