"""Request queue parameters the other queue tests leave out, in-process on every engine: `forefront` on a
prolonged lock (where the request goes when that lock expires) and on a released one, the default and the
largest `limit` of a locked head, the longest `lockSecs`, the token in the query, and a delete of a request
that another client has locked.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from satchel.service.queue_requests import MAX_LOCK_SECS, request_id
from tests.conftest import Server, every_engine
from tests.harness.envelope import assert_error, data_of

server = every_engine(in_process=True)


def req(n: int | str) -> dict[str, Any]:
    url = f"http://ex.com/p/{n}"
    return {"uniqueKey": url, "url": url}


def rid(n: int | str) -> str:
    return request_id(f"http://ex.com/p/{n}")


@pytest.fixture
def q(http: httpx.Client) -> str:
    """A fresh unnamed queue's path, holding requests 1, 2 and 3 in that order."""
    path = f"/request-queues/{data_of(http.post('/request-queues'), 201)['id']}"
    data_of(http.post(f"{path}/requests/batch", json=[req(1), req(2), req(3)]), 201)
    return path


def head_ids(http: httpx.Client, q: str) -> list[str]:
    return [item["id"] for item in data_of(http.get(f"{q}/head"))["items"]]


def test_a_lock_prolonged_with_forefront_puts_its_request_first_when_it_expires(
    http: httpx.Client, q: str
) -> None:
    taken = data_of(http.post(f"{q}/head/lock", params={"lockSecs": 60, "limit": 1, "clientKey": "a"}))
    assert [item["id"] for item in taken["items"]] == [rid(1)]
    prolonged = http.put(
        f"{q}/requests/{rid(1)}/lock", params={"lockSecs": 1, "clientKey": "a", "forefront": "true"}
    )
    assert prolonged.status_code == 200, prolonged.text
    assert head_ids(http, q) == [rid(2), rid(3)]
    time.sleep(1.3)
    assert head_ids(http, q) == [rid(1), rid(2), rid(3)]


def test_a_lock_released_without_forefront_sends_its_request_to_the_end(http: httpx.Client, q: str) -> None:
    data_of(http.post(f"{q}/head/lock", params={"lockSecs": 60, "limit": 1, "clientKey": "a"}))
    released = http.delete(f"{q}/requests/{rid(1)}/lock", params={"clientKey": "a", "forefront": "false"})
    assert released.status_code == 204
    assert head_ids(http, q) == [rid(2), rid(3), rid(1)]


def test_a_locked_head_takes_25_by_default_and_at_most(http: httpx.Client, q: str) -> None:
    data_of(http.post(f"{q}/requests/batch", json=[req(n) for n in range(4, 29)]), 201)
    first = data_of(http.post(f"{q}/head/lock", params={"lockSecs": 30, "clientKey": "a"}))
    assert (first["limit"], len(first["items"])) == (25, 25)
    rest = data_of(http.post(f"{q}/head/lock", params={"lockSecs": 30, "limit": 26, "clientKey": "b"}))
    assert (rest["limit"], len(rest["items"])) == (25, 3)


def test_lock_secs_up_to_a_week(http: httpx.Client, q: str) -> None:
    longest = data_of(http.post(f"{q}/head/lock", params={"lockSecs": MAX_LOCK_SECS, "limit": 1}))
    assert longest["lockSecs"] == MAX_LOCK_SECS
    assert_error(http.post(f"{q}/head/lock", params={"lockSecs": MAX_LOCK_SECS + 1}), 400)
    assert_error(
        http.put(f"{q}/requests/{rid(2)}/lock", params={"lockSecs": MAX_LOCK_SECS + 1, "clientKey": "a"}), 400
    )


def test_the_token_may_come_in_the_query(server: Server, q: str) -> None:
    with server.anonymous() as anonymous:
        assert_error(anonymous.get(f"{q}/head"), 404)
        head = data_of(anonymous.get(f"{q}/head", params={"token": server.token, "clientKey": "a"}))
        assert [item["id"] for item in head["items"]] == [rid(1), rid(2), rid(3)]
        added = anonymous.post(f"{q}/requests", params={"token": server.token}, json=req(9))
        assert data_of(added, 201)["requestId"] == rid(9)


def test_a_request_another_client_locked_may_still_be_deleted(http: httpx.Client, q: str) -> None:
    data_of(http.post(f"{q}/head/lock", params={"lockSecs": 60, "limit": 1, "clientKey": "a"}))
    assert http.delete(f"{q}/requests/{rid(1)}", params={"clientKey": "b"}).status_code == 204
    queue = data_of(http.get(q))
    assert (queue["totalRequestCount"], queue["pendingRequestCount"]) == (2, 2)
    assert data_of(http.get(f"{q}/requests", params={"filter": "locked"}))["items"] == []
