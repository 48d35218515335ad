"""Actor runs through the API, in-process on every engine: start (the Actor made on first use, new unnamed
storages marked with the run, INPUT from the body), get and change, charge, abort, the lists and the last run,
and a run's storages reached through it on the routes made from the storages' own."""

from __future__ import annotations

import gzip
import itertools
import time
from typing import Any

import httpx
import pytest
from apify_client._models import ActorResponse, ListOfRunsResponse, RunResponse

from satchel.api.routing import ROUTES
from tests.conftest import Server, every_engine
from tests.harness.envelope import assert_error

server = every_engine(in_process=True)
NAMES = itertools.count()


def _actor() -> str:
    return f"actor-{next(NAMES)}"


def _start(http: httpx.Client, actor: str, body: Any = None, **params: Any) -> dict[str, Any]:
    """A new run of the caller's Actor of this name, or (with a `~` or an id) of the Actor so named."""
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    ref = actor if "~" in actor or not actor.startswith("actor-") else f"~{actor}"
    response = http.post(f"/acts/{ref}/runs", params=params, **kwargs)
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()["data"]
    assert response.headers["location"].endswith(f"/v2/actor-runs/{run['id']}")
    return run


def _error(response: httpx.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"type", "message"}
    if kind is not None:
        assert error["type"] == kind
    return error


def _stranger(server: Server) -> str:
    assert server.app is not None
    _, token = server.app.run(server.app.app.services.users.create(f"stranger{next(NAMES)}"))
    return str(token)


def test_a_run_starts_with_its_own_storages_and_its_input(server: Server) -> None:
    actor = _actor()
    with server.client() as http:
        run = _start(http, actor, {"start": "http://example.com"}, origin="CLI", memory=2048, timeout=60)
        RunResponse.model_validate({"data": run})  # the official client's model of a run
        assert run["status"] == "RUNNING"
        assert run["meta"] == {"origin": "CLI"}
        assert run["finishedAt"] is None
        assert run["exitCode"] is None
        assert run["pricingInfo"] is None
        assert run["chargedEventCounts"] == {}
        assert run["buildNumber"] == "0.0.1"
        assert run["options"]["memoryMbytes"] == 2048
        assert run["options"]["timeoutSecs"] == 60
        assert run["stats"]["inputBodyLen"] == len(b'{"start":"http://example.com"}')
        me = http.get("/users/me").json()["data"]
        assert run["userId"] == me["id"]
        for path, store_id in (
            ("key-value-stores", run["defaultKeyValueStoreId"]),
            ("datasets", run["defaultDatasetId"]),
            ("request-queues", run["defaultRequestQueueId"]),
        ):
            store = http.get(f"/{path}/{store_id}").json()["data"]
            assert store["name"] is None  # unnamed: kept as long as unnamed storages are
            assert (store["actId"], store["actRunId"]) == (run["actId"], run["id"])
        record = http.get(f"/key-value-stores/{run['defaultKeyValueStoreId']}/records/INPUT")
        assert record.json() == {"start": "http://example.com"}
        assert record.headers["content-type"].startswith("application/json")

        # The Actor is made once: the next run of the same name is another run of it.
        again = _start(http, actor)
        assert again["actId"] == run["actId"]
        assert again["id"] != run["id"]
        assert again["defaultDatasetId"] != run["defaultDatasetId"]
        assert again["meta"]["origin"] == "API"
        assert again["options"]["memoryMbytes"] == 1024
        # Without a body there is no INPUT.
        kvs = again["defaultKeyValueStoreId"]
        assert http.get(f"/key-value-stores/{kvs}/records/INPUT").status_code == 404
        # By id and by username~name, the same Actor.
        assert _start(http, run["actId"])["actId"] == run["actId"]
        assert _start(http, f"{me['username']}~{actor}")["actId"] == run["actId"]


def test_an_actor_made_by_its_first_run_reads_back_for_its_owner_alone(server: Server) -> None:
    actor = _actor()
    with server.client() as http:
        run = _start(http, actor)
        for ref in (f"~{actor}", f"admin~{actor}", run["actId"]):
            for path in (f"/acts/{ref}", f"/actors/{ref}"):
                response = http.get(path)
                assert response.status_code == 200, (path, response.text)
                found = ActorResponse.model_validate(response.json()).data  # the official client's model
                assert (found.id, found.name, found.username) == (run["actId"], actor, "admin")
                assert found.user_id == run["userId"]
        _error(http.get(f"/acts/~{_actor()}"), 404, "record-not-found")
        _error(http.put(f"/acts/~{actor}", json={}), 405)
    with server.client(token=_stranger(server)) as other:
        _error(other.get(f"/acts/{run['actId']}"), 404, "record-not-found")


def test_input_keeps_its_content_type_and_encoding(server: Server) -> None:
    with server.client() as http:
        packed = http.post(
            f"/acts/~{_actor()}/runs",
            content=gzip.compress(b'{"packed": true}'),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        ).json()["data"]
        assert http.get(f"/actor-runs/{packed['id']}/key-value-store/records/INPUT").json() == {
            "packed": True
        }
        assert packed["stats"]["inputBodyLen"] == len(b'{"packed": true}')
        response = http.post(
            f"/acts/~{_actor()}/runs", content=b"plain input", headers={"content-type": "text/plain"}
        )
        run = response.json()["data"]
        record = http.get(f"/actor-runs/{run['id']}/key-value-store/records/INPUT")
        assert record.content == b"plain input"
        assert record.headers["content-type"].startswith("text/plain")


def test_a_refused_input_leaves_no_storages_behind(server: Server) -> None:
    def unnamed(http: httpx.Client, kind: str) -> int:
        return int(http.get(f"/{kind}", params={"unnamed": "true"}).json()["data"]["total"])

    with server.client() as http:
        kinds = ("key-value-stores", "datasets", "request-queues")
        before = [unnamed(http, kind) for kind in kinds]
        lying = http.post(
            f"/acts/~{_actor()}/runs",
            content=b"not gzip at all" * 100,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert lying.status_code == 400, lying.text
        assert [unnamed(http, kind) for kind in kinds] == before


def test_status_message_access_and_the_end_of_a_run(server: Server) -> None:
    with server.client() as http:
        run = _start(http, _actor())
        url = f"/actor-runs/{run['id']}"
        # What the SDK sends: no runId in the body (one sent is ignored).
        changed = http.put(url, json={"statusMessage": "crawling"}).json()["data"]
        assert changed["statusMessage"] == "crawling"
        assert changed["isStatusMessageTerminal"] is False
        changed = http.put(
            url, json={"statusMessage": "done", "isStatusMessageTerminal": True, "runId": "whatever"}
        ).json()["data"]
        assert (changed["statusMessage"], changed["isStatusMessageTerminal"]) == ("done", True)
        RunResponse.model_validate({"data": changed})

        finished = http.put(url, json={"status": "SUCCEEDED", "exitCode": 0}).json()["data"]
        assert finished["status"] == "SUCCEEDED"
        assert finished["exitCode"] == 0
        assert finished["finishedAt"] is not None
        assert finished["stats"]["durationMillis"] >= 0
        assert http.get(url, params={"waitForFinish": 60}).json()["data"] == finished  # finished: no wait
        # An abort of a finished run changes nothing.
        assert http.post(f"{url}/abort").json()["data"]["status"] == "SUCCEEDED"
        told = http.put(url, json={"status": "FAILED", "finishedAt": "2030-01-02T03:04:05.678Z"}).json()
        assert told["data"]["finishedAt"] == "2030-01-02T03:04:05.678Z"

        # Gracefully, a run nobody drives is ABORTED at once: there is no command to tell.
        running = _start(http, _actor())
        aborted = http.post(f"/actor-runs/{running['id']}/abort", params={"gracefully": "true"})
        assert aborted.status_code == 200
        assert aborted.json()["data"]["status"] == "ABORTED"
        assert aborted.json()["data"]["finishedAt"]


def test_a_graceful_abort_of_a_run_satchel_run_drives_leaves_it_aborting(server: Server) -> None:
    """A run started as `satchel run` starts one (origin CLI) is ABORTING after a graceful abort, not yet
    finished, until its command ends (test_run_events.py has `satchel run` at the other end); aborted again,
    it is ABORTED at once."""
    with server.client() as http:
        run = _start(http, _actor(), origin="CLI")
        url = f"/actor-runs/{run['id']}"
        aborting = http.post(f"{url}/abort", params={"gracefully": "1"}).json()["data"]
        assert (aborting["status"], aborting["finishedAt"]) == ("ABORTING", None)
        RunResponse.model_validate({"data": aborting})
        assert http.get(url).json()["data"]["status"] == "ABORTING"
        stopped = http.post(f"{url}/abort", params={"gracefully": "1"}).json()["data"]
        assert stopped["status"] == "ABORTED"
        assert stopped["finishedAt"] is not None
        # What `satchel run` does when its command has ended: the run ABORTED, with the command's exit code.
        other = _start(http, _actor(), origin="CLI")
        assert http.post(f"/actor-runs/{other['id']}/abort", params={"gracefully": "1"}).status_code == 200
        ended = http.put(f"/actor-runs/{other['id']}", json={"status": "ABORTED", "exitCode": 0}).json()[
            "data"
        ]
        assert (ended["status"], ended["exitCode"]) == ("ABORTED", 0)
        assert ended["finishedAt"] is not None


def test_a_run_never_finishes_before_it_started(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    with server.client() as http:
        # A finishedAt sent from a clock behind the server's.
        run = _start(http, _actor())
        told = http.put(
            f"/actor-runs/{run['id']}", json={"status": "SUCCEEDED", "finishedAt": "2001-01-01T00:00:00Z"}
        )
        assert told.status_code == 200, told.text
        assert told.json()["data"]["finishedAt"] == run["startedAt"]
        assert told.json()["data"]["stats"]["durationMillis"] == 0
        # The server's own clock stepped back (or another API node's, behind the one that started the run).
        ended, aborted = _start(http, _actor()), _start(http, _actor())
        monkeypatch.setattr("satchel.service.runs.now_ms", lambda: 1_000_000_000_000)  # 2001
        finished = http.put(f"/actor-runs/{ended['id']}", json={"status": "FAILED"}).json()["data"]
        assert finished["finishedAt"] == ended["startedAt"]
        stopped = http.post(f"/actor-runs/{aborted['id']}/abort").json()["data"]
        assert (stopped["status"], stopped["finishedAt"]) == ("ABORTED", aborted["startedAt"])
        for shown in (finished, stopped, *http.get("/actor-runs").json()["data"]["items"]):
            assert shown["finishedAt"] is None or shown["finishedAt"] >= shown["startedAt"]


def test_who_may_see_and_change_a_run(server: Server) -> None:
    stranger = _stranger(server)
    with server.client() as http, server.client(token=stranger) as other, server.anonymous() as nobody:
        run = _start(http, _actor())
        url = f"/actor-runs/{run['id']}"
        _error(other.get(url), 404, "record-not-found")
        _error(nobody.get(url), 404, "record-or-token-not-found")
        _error(other.get(f"{url}/dataset"), 404)
        _error(other.put(url, json={"statusMessage": "x"}), 404)

        shared = http.put(url, json={"generalAccess": "ANYONE_WITH_ID_CAN_READ"}).json()["data"]
        assert shared["generalAccess"] == "ANYONE_WITH_ID_CAN_READ"
        assert nobody.get(url).json()["data"]["id"] == run["id"]
        # The run's storages get its general access: "how others can access the run and its storages".
        assert nobody.get(f"/datasets/{run['defaultDatasetId']}").status_code == 200
        assert nobody.get(f"{url}/key-value-store").json()["data"]["id"] == run["defaultKeyValueStoreId"]
        _error(other.put(url, json={"statusMessage": "x"}), 403, "insufficient-permissions")
        _error(other.post(f"{url}/abort"), 403)
        _error(nobody.put(url, json={"statusMessage": "x"}), 401)
        # Others' Actors are not theirs to see or run.
        _error(other.get(f"/acts/{run['actId']}/runs"), 404)
        _error(other.post(f"/acts/{run['actId']}/runs"), 404)
        _error(nobody.get("/actor-runs"), 401)


def test_bad_input_gets_a_4xx_with_the_envelope(server: Server) -> None:
    with server.client() as http:
        run = _start(http, _actor())
        url = f"/actor-runs/{run['id']}"
        for body in (
            {"status": "DONE"},
            {"status": 3},
            {"exitCode": "0"},
            {"exitCode": True},
            {"exitCode": 2**40},
            {"statusMessage": 5},
            {"statusMessage": "x" * 5000},
            {"isStatusMessageTerminal": "yes"},
            {"generalAccess": "EVERYONE"},
            {"finishedAt": "yesterday"},
            {"finishedAt": 12},
        ):
            _error(http.put(url, json=body), 400, "invalid-value")
        _error(http.put(url, content=b"{}", headers={"content-encoding": "zstd"}), 415)
        zstd = {"content-encoding": "zstd", "content-type": "application/json"}
        _error(http.post(f"/acts/~{_actor()}/runs", content=b"{}", headers=zstd), 415)
        _error(http.put(url, content=b"[1]"), 400)
        _error(http.put(url, content=b"{"), 400)
        _error(http.get("/actor-runs/nosuchrun"), 404, "record-not-found")
        _error(http.put("/actor-runs/nosuchrun", json={}), 404)
        _error(http.post("/actor-runs/nosuchrun/abort"), 404)
        _error(http.post("/acts/~bad_name!/runs"), 400, "invalid-value")
        _error(http.post("/acts/~" + "a" * 64 + "/runs"), 400, "invalid-value")
        _error(http.post(f"/acts/~{_actor()}/runs", params={"memory": 64}), 400, "invalid-value")
        _error(http.post(f"/acts/~{_actor()}/runs", params={"memory": "lots"}), 400, "invalid-value")
        _error(http.post(f"/acts/~{_actor()}/runs", params={"origin": "MARS"}), 400, "invalid-value")
        _error(http.post("/acts/nosuchactor/runs"), 404, "record-not-found")
        _error(http.get("/acts/nosuchactor/runs/last"), 404)
        _error(http.get("/actor-runs", params={"status": "DONE"}), 400, "invalid-value")
        _error(http.get("/actor-runs", params={"startedAfter": "soon"}), 400, "invalid-value")
        _error(http.get("/actor-runs", params={"limit": "-1"}), 400, "invalid-value")
        _error(http.get("/actor-runs/nosuchrun/key-value-store/records/INPUT"), 404, "record-not-found")
        charges: list[dict[str, Any]] = [{}, {"eventName": ""}, {"eventName": 1}]
        charges.append({"eventName": "x", "count": 0})
        for charge in charges:
            _error(http.post(f"{url}/charge", json=charge), 400, "invalid-value")
        _error(
            http.post(f"{url}/charge", json={"eventName": "x"}, headers={"idempotency-key": "k" * 300}), 400
        )


def test_charges_count_once_per_idempotency_key(server: Server) -> None:
    with server.client() as http:
        run = _start(http, _actor())
        url = f"/actor-runs/{run['id']}"
        key = {"idempotency-key": f"{run['id']}-page-crawled-1-abcdef"}
        body = {"eventName": "page-crawled", "count": 2}
        assert http.post(f"{url}/charge", json=body, headers=key).status_code == 201
        assert http.post(f"{url}/charge", json=body, headers=key).status_code == 201  # a retry: a no-op
        http.post(f"{url}/charge", json={"eventName": "page-crawled"})  # no key: always counts
        http.post(f"{url}/charge", json={"eventName": "item"}, headers={"idempotency-key": "other"})
        assert http.get(url).json()["data"]["chargedEventCounts"] == {"item": 1, "page-crawled": 3}


def test_a_finished_run_is_deleted_by_its_owner_and_its_storages_stay(server: Server) -> None:
    actor = _actor()
    stranger = _stranger(server)
    with server.client() as http, server.client(token=stranger) as other, server.anonymous() as nobody:
        earlier = _start(http, actor)
        run = _start(http, actor)
        url = f"/actor-runs/{run['id']}"
        assert_error(http.delete(url), 400, "invalid-request")  # still RUNNING
        http.post(f"{url}/charge", json={"eventName": "page"})
        assert http.put(url, json={"status": "SUCCEEDED"}).status_code == 200
        http.put(url, json={"generalAccess": "ANYONE_WITH_ID_CAN_READ"})
        assert_error(other.delete(url), 403, "insufficient-permissions")  # may read it, not delete it
        assert_error(nobody.delete(url), 401, "token-not-provided")
        assert http.delete(url).status_code == 204
        assert_error(http.get(url), 404, "record-not-found")
        assert_error(http.delete(url), 404, "record-not-found")
        assert http.get(f"/acts/~{actor}/runs/last").json()["data"]["id"] == earlier["id"]
        assert http.get(f"/datasets/{run['defaultDatasetId']}").status_code == 200
        assert http.get(f"/key-value-stores/{run['defaultKeyValueStoreId']}").status_code == 200


def test_a_browser_may_send_the_idempotency_key(server: Server) -> None:
    """The clients send it with every charge; a page charging a run from the browser needs it allowed."""
    with server.client() as http:
        run = _start(http, _actor())
        answer = http.options(
            f"/actor-runs/{run['id']}/charge",
            headers={"origin": "https://example.com", "access-control-request-method": "POST"},
        )
    assert answer.status_code == 204
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"idempotency-key", "authorization", "content-type"} <= allowed


def test_lists_of_runs_and_the_last_run(server: Server) -> None:
    actor = _actor()
    with server.client() as http:
        me = http.get("/users/me").json()["data"]["username"]
        # Started a few milliseconds apart: runs started in the same one are ordered by id, at random.
        first = _start(http, actor)
        time.sleep(0.005)
        second = _start(http, actor, origin="CLI")
        time.sleep(0.005)
        third = _start(http, actor)
        time.sleep(0.005)
        other = _start(http, _actor())
        http.put(f"/actor-runs/{first['id']}", json={"status": "SUCCEEDED"})
        http.put(f"/actor-runs/{second['id']}", json={"status": "FAILED", "exitCode": 1})
        actor_id = first["actId"]

        for ref in (actor_id, f"{me}~{actor}", f"~{actor}"):
            page = http.get(f"/acts/{ref}/runs").json()
            ListOfRunsResponse.model_validate(page)
            assert [r["id"] for r in page["data"]["items"]] == [first["id"], second["id"], third["id"]]
            assert (page["data"]["total"], page["data"]["count"], page["data"]["desc"]) == (3, 3, False)
        page = http.get(f"/acts/{actor_id}/runs", params={"desc": 1, "limit": 1, "offset": 1}).json()["data"]
        assert [r["id"] for r in page["items"]] == [second["id"]]
        assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)
        only = http.get(f"/acts/{actor_id}/runs", params={"status": "SUCCEEDED,FAILED"}).json()["data"]
        assert [r["id"] for r in only["items"]] == [first["id"], second["id"]]

        everything = http.get("/actor-runs", params={"desc": "true"}).json()
        ListOfRunsResponse.model_validate(everything)
        listed = [r["id"] for r in everything["data"]["items"]]
        assert listed.index(other["id"]) < listed.index(third["id"]) < listed.index(first["id"])
        running = http.get("/actor-runs", params={"status": "RUNNING"}).json()["data"]["items"]
        assert {r["status"] for r in running} == {"RUNNING"}
        assert third["id"] in {r["id"] for r in running}
        assert (
            http.get("/actor-runs", params={"origin": "CLI"}).json()["data"]["items"][-1]["id"]
            == second["id"]
        )
        after = http.get("/actor-runs", params={"startedAfter": third["startedAt"]}).json()["data"]["items"]
        assert third["id"] in {r["id"] for r in after}
        assert first["id"] not in {r["id"] for r in after}

        last = http.get(f"/acts/~{actor}/runs/last").json()
        RunResponse.model_validate(last)
        assert last["data"]["id"] == third["id"]
        assert (
            http.get(f"/acts/{actor_id}/runs/last", params={"status": "FAILED"}).json()["data"]["id"]
            == (second["id"])
        )
        _error(http.get(f"/acts/{actor_id}/runs/last", params={"status": "ABORTED"}), 404, "record-not-found")


def test_storages_through_the_run_answer_as_their_own_routes(server: Server) -> None:
    actor = _actor()
    with server.client() as http:
        run = _start(http, actor, {"a": 1})
        kvs = run["defaultKeyValueStoreId"]
        through = f"/actor-runs/{run['id']}/key-value-store"
        assert http.get(through).json() == http.get(f"/key-value-stores/{kvs}").json()
        assert http.put(f"{through}/records/OUTPUT", json={"done": True}).status_code == 201
        assert http.get(f"/key-value-stores/{kvs}/records/OUTPUT").json() == {"done": True}
        keys = http.get(f"{through}/keys").json()["data"]["items"]
        assert [k["key"] for k in keys] == ["INPUT", "OUTPUT"]
        last = f"/acts/~{actor}/runs/last/key-value-store"
        assert http.get(f"{last}/records/INPUT").json() == {"a": 1}
        assert http.get(f"{last}/records/INPUT", params={"status": "SUCCEEDED"}).status_code == 404
        dataset = http.get(f"/actor-runs/{run['id']}/dataset").json()["data"]
        assert dataset["id"] == run["defaultDatasetId"]
        queue = http.get(f"/acts/~{actor}/runs/last/request-queue").json()["data"]
        assert queue["id"] == run["defaultRequestQueueId"]


def test_every_storage_route_has_its_run_and_last_run_variants() -> None:
    templates = {route.template for route in ROUTES}
    storage_routes = [
        route.template
        for route in ROUTES
        if route.template.startswith(("/v2/key-value-stores/{", "/v2/datasets/{", "/v2/request-queues/{"))
    ]
    assert "/v2/key-value-stores/{storeId}/records/{recordKey}" in storage_routes
    segment = {
        "key-value-stores": "key-value-store",
        "datasets": "dataset",
        "request-queues": "request-queue",
    }
    for template in storage_routes:
        _, collection, _param, *rest = template.split("/")[1:]
        segment = {
            "key-value-stores": "key-value-store",
            "datasets": "dataset",
            "request-queues": "request-queue",
        }
        tail = "/".join([segment[collection], *rest])
        assert f"/v2/actor-runs/{{runId}}/{tail}" in templates
        assert f"/v2/acts/{{actorId}}/runs/last/{tail}" in templates
        assert f"/v2/actors/{{actorId}}/runs/last/{tail}" in templates  # as the official clients spell it
    acts = [template for template in templates if template.startswith("/v2/acts/")]
    assert acts
    assert all(template.replace("/v2/acts/", "/v2/actors/") in templates for template in acts)


@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE"])
def test_chained_routes_need_a_run(server: Server, method: str) -> None:
    with server.client() as http:
        response = http.request(method, "/actor-runs/nosuchrun/key-value-store/records/x", content=b"{}")
        _error(response, 404, "record-not-found")
        assert response.json()["error"]["message"] == "Actor run was not found."
