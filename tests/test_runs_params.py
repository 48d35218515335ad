"""Run parameters the other run tests leave out, on the session's server: `waitForFinish` on a run that
finishes during the wait (by its id and as an Actor's last run, as the official client waits for one),
`startedBefore`, `offset` and the largest `limit` of a list, several statuses on the list of all runs, the
last run chosen by `origin`, the `/v2/actors/...` spelling of the Actor routes, and a run's storage changed
(PUT) and read with its last-run filters through the run.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from apify_client import ApifyClient

from tests.conftest import Server
from tests.harness.envelope import assert_error, data_of, unique
from tests.harness.runs import start_run


def finish_soon(server: Server, run_id: str, status: str) -> threading.Thread:
    """A thread that ends the run half a second from now."""

    def finish() -> None:
        time.sleep(0.5)
        with server.client() as other:
            data_of(other.put(f"/actor-runs/{run_id}", json={"status": status, "exitCode": 0}))

    finisher = threading.Thread(target=finish)
    finisher.start()
    return finisher


@pytest.mark.parametrize("through", ["run", "last run"])
def test_wait_for_finish_returns_when_the_run_finishes(server: Server, through: str) -> None:
    actor = unique("wait")
    with server.client() as http:
        run = start_run(http, actor)
        path = f"/actor-runs/{run['id']}" if through == "run" else f"/acts/~{actor}/runs/last"
        assert data_of(http.get(path))["status"] == "RUNNING"  # without waitForFinish: at once
        finisher = finish_soon(server, run["id"], "SUCCEEDED")
        waited = data_of(http.get(path, params={"waitForFinish": 30}))
        finisher.join()
        assert (waited["id"], waited["status"], waited["exitCode"]) == (run["id"], "SUCCEEDED", 0)


def test_the_clients_wait_for_the_last_run(server: Server) -> None:
    actor = unique("wait")
    with server.client() as http:
        run = start_run(http, actor)
    finisher = finish_soon(server, run["id"], "FAILED")
    last = ApifyClient(server.token, api_url=server.base_url).actor(f"~{actor}").last_run()
    waited = last.wait_for_finish(wait_duration=timedelta(seconds=30))
    finisher.join()
    assert waited is not None
    assert (waited.id, waited.status) == (run["id"], "FAILED")


def test_list_filters_paging_and_the_last_run_by_origin(server: Server) -> None:
    actor = unique("lists")
    with server.client() as http:
        first = start_run(http, actor, origin="CLI")
        time.sleep(0.01)
        second = start_run(http, actor)
        time.sleep(0.01)
        third = start_run(http, actor)
        http.put(f"/actor-runs/{third['id']}", json={"status": "ABORTED"})
        runs = f"/acts/{first['actId']}/runs"
        before = data_of(http.get(runs, params={"startedBefore": second["startedAt"]}))
        assert [r["id"] for r in before["items"]] == [first["id"], second["id"]]  # at or before
        page = data_of(http.get(runs, params={"offset": 1, "limit": 5000}))
        assert (page["offset"], page["limit"], page["total"]) == (1, 1000, 3)
        assert [r["id"] for r in page["items"]] == [second["id"], third["id"]]
        mixed = data_of(http.get("/actor-runs", params={"status": "ABORTED,RUNNING", "desc": 1}))
        listed = [r["id"] for r in mixed["items"]]
        assert listed.index(third["id"]) < listed.index(second["id"]) < listed.index(first["id"])
        assert all(r["status"] in ("ABORTED", "RUNNING") for r in mixed["items"])
        assert data_of(http.get(f"{runs}/last", params={"origin": "CLI"}))["id"] == first["id"]
        assert (
            data_of(http.get(f"{runs}/last", params={"origin": "API", "status": "RUNNING"}))["id"]
            == (second["id"])
        )
        assert_error(http.get(f"{runs}/last", params={"origin": "WEB"}), 404, "record-not-found")


def test_the_clients_actors_spelling_answers_as_acts(server: Server) -> None:
    actor = unique("spelling")
    with server.client() as http:
        made = data_of(http.post(f"/actors/~{actor}/runs", params={"origin": "CLI"}), 201)
        assert (
            data_of(http.get(f"/actors/{made['actId']}/runs"))["items"]
            == data_of(http.get(f"/acts/{made['actId']}/runs"))["items"]
        )
        assert data_of(http.get(f"/actors/~{actor}/runs/last"))["id"] == made["id"]
        store = data_of(http.get(f"/actors/~{actor}/runs/last/key-value-store"))
        assert store["id"] == made["defaultKeyValueStoreId"]


def test_a_runs_storages_are_changed_and_read_through_the_run(server: Server) -> None:
    actor = unique("through")
    with server.client() as http:
        run = start_run(http, actor)
        title = data_of(http.put(f"/actor-runs/{run['id']}/dataset", json={"title": "Results"}))
        assert (title["id"], title["title"]) == (run["defaultDatasetId"], "Results")
        head = data_of(http.get(f"/actor-runs/{run['id']}/request-queue/head"))
        assert head["items"] == []
        url = "http://ex.com/through"
        added = http.post(f"/actor-runs/{run['id']}/request-queue/requests", json={"url": url})
        assert data_of(added, 201)["wasAlreadyPresent"] is False
        last = f"/acts/~{actor}/runs/last/request-queue"
        assert data_of(http.get(last, params={"status": "RUNNING"}))["totalRequestCount"] == 1
        assert_error(http.get(last, params={"status": "SUCCEEDED"}), 404, "record-not-found")
