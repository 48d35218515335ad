"""`POST /v2/acts/{actorId}/runs/last/abort` and `.../charge`: each acts on the run the last-run GET finds
(its `status` and `origin` filters included), as the run's own abort and charge do: the same answers, errors
and idempotency-key rule. The official client's `actor(...).last_run().abort()` and `.charge(...)` send them;
on the session's server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from apify_client import ApifyClient, ApifyClientAsync

from tests.conftest import Server
from tests.harness.cli import new_user
from tests.harness.envelope import answer, assert_error, data_of, unique
from tests.harness.runs import start_run


def run_of(http: httpx.Client, run: dict[str, Any]) -> dict[str, Any]:
    got: dict[str, Any] = data_of(http.get(f"/actor-runs/{run['id']}"))
    return got


@pytest.fixture(scope="module")
def stranger(server: Server) -> str:
    """The token of a user who owns no Actor of the admin's."""
    return new_user(server.data_dir, unique("stranger"))


def test_the_official_client_aborts_and_charges_the_last_run(server: Server) -> None:
    actor = unique("last-actions")
    with server.client() as http:
        first = start_run(http, actor, origin="CLI")
        second = start_run(http, actor)
    client = ApifyClient(server.token, api_url=server.base_url).actor(f"~{actor}")
    client.last_run().charge("page", count=2)
    client.last_run().charge("page", idempotency_key="once")
    client.last_run().charge("page", idempotency_key="once")  # a key the run has seen counts nothing
    # Gracefully, a run `satchel run` drives (origin CLI) is ABORTING until its command has ended.
    aborted = client.last_run(origin="CLI").abort(gracefully=True)
    assert (aborted.id, aborted.status) == (first["id"], "ABORTING")
    aborted = client.last_run(status="RUNNING").abort()
    assert (aborted.id, aborted.status, aborted.charged_event_counts) == (
        second["id"],
        "ABORTED",
        {"page": 3},
    )
    with server.client() as http:
        assert run_of(http, first)["chargedEventCounts"] == {}


def test_the_official_client_deletes_a_finished_run(server: Server) -> None:
    actor = unique("delete")
    with server.client() as http:
        run = start_run(http, actor)
    client = ApifyClient(server.token, api_url=server.base_url)
    client.run(run["id"]).abort()
    client.run(run["id"]).delete()
    assert client.run(run["id"]).get() is None


def test_the_async_client_aborts_and_charges_the_last_run(server: Server) -> None:
    actor = unique("last-actions-async")
    with server.client() as http:
        run = start_run(http, actor)
    last = ApifyClientAsync(server.token, api_url=server.base_url).actor(f"~{actor}").last_run()
    asyncio.run(last.charge("result"))
    aborted = asyncio.run(last.abort())
    assert (aborted.id, aborted.status, aborted.charged_event_counts) == (run["id"], "ABORTED", {"result": 1})


def test_the_answers_are_the_runs_own(server: Server) -> None:
    actor = unique("last-answers")
    with server.client() as http:
        run = start_run(http, actor)
        aborted = data_of(http.post(f"/acts/~{actor}/runs/last/abort"))
        assert (aborted["id"], aborted["status"]) == (run["id"], "ABORTED")
        assert aborted["finishedAt"] is not None
        assert aborted == run_of(http, run)
        # A finished run is left as it is, by every way to it.
        assert aborted == data_of(http.post(f"/actor-runs/{run['id']}/abort"))
        assert aborted == data_of(http.post(f"/acts/{run['actId']}/runs/last/abort?gracefully=true"))
        assert aborted == data_of(http.post(f"/actors/{run['actId']}/runs/last/abort"))
        charged = http.post(f"/acts/~{actor}/runs/last/charge", json={"eventName": "e"})
        ours = http.post(f"/actor-runs/{run['id']}/charge", json={"eventName": "e"})
        via_actors = http.post(f"/actors/~{actor}/runs/last/charge", json={"eventName": "e", "count": 5})
        for response in (charged, ours, via_actors):
            assert (response.status_code, response.content) == (201, b"")
        assert run_of(http, run)["chargedEventCounts"] == {"e": 7}


def test_the_idempotency_key_is_the_runs(server: Server) -> None:
    actor = unique("last-idempotent")
    with server.client() as http:
        older = start_run(http, actor)
        run = start_run(http, actor)
        key = {"idempotency-key": unique("key")}
        body = {"eventName": "e", "count": 2}
        for path in (f"/acts/~{actor}/runs/last/charge", f"/actor-runs/{run['id']}/charge"):
            assert http.post(path, json=body, headers=key).status_code == 201
        assert run_of(http, run)["chargedEventCounts"] == {"e": 2}
        # The key is the run's: another run counts it.
        assert http.post(f"/actor-runs/{older['id']}/charge", json=body, headers=key).status_code == 201
        assert run_of(http, older)["chargedEventCounts"] == {"e": 2}
        too_long = {"idempotency-key": "k" * 257}
        assert answer(http.post(f"/acts/~{actor}/runs/last/charge", json=body, headers=too_long)) == answer(
            http.post(f"/actor-runs/{run['id']}/charge", json=body, headers=too_long)
        )
        assert run_of(http, run)["chargedEventCounts"] == {"e": 2}


def test_the_filters_choose_the_run_and_none_is_404(server: Server) -> None:
    actor = unique("last-action-filters")
    with server.client() as http:
        cli = start_run(http, actor, origin="CLI")
        running = start_run(http, actor)
        last = f"/acts/{cli['actId']}/runs/last"
        for params, expected in (
            ({"origin": "CLI"}, cli),
            ({"status": "RUNNING", "origin": "API"}, running),
            ({"status": "RUNNING,READY"}, running),
        ):
            charged = http.post(f"{last}/charge", params=params, json={"eventName": str(params)})
            assert charged.status_code == 201
            assert str(params) in run_of(http, expected)["chargedEventCounts"]
        for action, body in (("abort", None), ("charge", {"eventName": "e"})):
            for params in (
                {"status": "SUCCEEDED"},
                {"origin": "WEB"},
                {"status": "ABORTED", "origin": "CLI"},
            ):
                response = http.post(f"{last}/{action}", params=params, json=body)
                assert_error(response, 404, "record-not-found")
            assert_error(
                http.post(f"{last}/{action}", params={"status": "DONE"}, json=body), 400, "invalid-value"
            )
            assert_error(
                http.post(f"{last}/{action}", params={"origin": "MARS"}, json=body), 400, "invalid-value"
            )
            assert_error(
                http.post(f"/acts/nosuchactor/runs/last/{action}", json=body), 404, "record-not-found"
            )
            never = f"/actors/~{unique('never-run')}/runs/last/{action}"
            assert_error(http.post(never, json=body), 404, "record-not-found")
            assert http.get(f"{last}/{action}").status_code == 405
        # The filters that found nothing changed nothing.
        assert [run_of(http, run)["status"] for run in (cli, running)] == ["RUNNING", "RUNNING"]
        aborted = data_of(http.post(f"{last}/abort", params={"origin": "CLI", "status": "RUNNING"}))
        assert (aborted["id"], aborted["status"]) == (cli["id"], "ABORTED")
        assert data_of(http.post(f"{last}/abort", params={"status": "RUNNING"}))["id"] == running["id"]
        assert_error(http.post(f"{last}/abort", params={"status": "RUNNING"}), 404, "record-not-found")


BAD_BODIES: list[tuple[bytes, dict[str, str]]] = [
    (b"", {}),
    (b"{", {}),
    (b"[1]", {}),
    (b'"x"', {}),
    (b"{}", {}),
    (b'{"eventName": ""}', {}),
    (b'{"eventName": 5}', {}),
    (b'{"eventName": "' + b"e" * 257 + b'"}', {}),
    (b'{"eventName": "e", "count": 0}', {}),
    (b'{"eventName": "e", "count": -1}', {}),
    (b'{"eventName": "e", "count": 1.5}', {}),
    (b'{"eventName": "e", "count": "2"}', {}),
    (b'{"eventName": "e", "count": true}', {}),
    (b'{"eventName": "e", "count": 4294967296}', {}),
    (b'{"eventName": "e"}', {"content-encoding": "zstd"}),
    (b"\x1f\x8b not gzip", {"content-encoding": "gzip"}),
]


@pytest.mark.parametrize(("body", "headers"), BAD_BODIES, ids=[repr(b[:20]) for b, _ in BAD_BODIES])
def test_a_bad_charge_is_refused_as_by_the_runs_charge(
    server: Server, body: bytes, headers: dict[str, str]
) -> None:
    actor = unique("last-bad-charge")
    with server.client() as http:
        run = start_run(http, actor)
        sent = {"content-type": "application/json", **headers}
        status, error_type = answer(http.post(f"/acts/~{actor}/runs/last/charge", content=body, headers=sent))
        assert 400 <= status < 500
        assert (status, error_type) == answer(
            http.post(f"/actor-runs/{run['id']}/charge", content=body, headers=sent)
        )
        # With no such run: what the run's charge answers for a run that is not there.
        none = answer(http.post(f"/acts/~{actor}/runs/last/charge?status=FAILED", content=body, headers=sent))
        assert none == answer(http.post("/actor-runs/nosuchrun/charge", content=body, headers=sent))
        assert run_of(http, run) == run


def test_a_user_without_access_gets_the_gets_answer(server: Server, stranger: str) -> None:
    actor = unique("last-actions-private")
    with server.client() as http:
        run = start_run(http, actor)
        admin = data_of(http.get("/users/me"))["username"]
        # Even a run anyone with its id may read is the owner's to abort and charge.
        data_of(http.put(f"/actor-runs/{run['id']}", json={"generalAccess": "ANYONE_WITH_ID_CAN_READ"}))
        run = run_of(http, run)
    refs = [run["actId"], f"{admin}~{actor}", f"~{actor}"]
    with server.client(stranger) as other, server.anonymous() as nobody:
        for http in (other, nobody):
            for ref in refs:
                for spelling in ("acts", "actors"):
                    path = f"/{spelling}/{ref}/runs/last"
                    got = answer(http.get(path))
                    assert got[0] in (401, 404), got
                    assert answer(http.post(f"{path}/abort")) == got
                    assert answer(http.post(f"{path}/charge", json={"eventName": "e"})) == got
                    filtered = answer(http.get(path, params={"status": "RUNNING"}))
                    assert answer(http.post(f"{path}/abort", params={"status": "RUNNING"})) == filtered
    with server.client() as http:
        assert run_of(http, run) == run
