"""Every request-queue method of the official Python apify-client against a real server, on every engine.

The client validates each answer with its pydantic models, so a missing or mistyped field fails here.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from apify_client import ApifyClient
from apify_client.errors import ApifyApiError
from crawlee import Request as CrawleeRequest

from satchel.service.queue_requests import request_id
from tests.conftest import Server, every_engine

server = every_engine()


@pytest.fixture(scope="module")
def apify(server: Server) -> ApifyClient:
    return ApifyClient(
        token=server.token, api_url=server.base_url, api_public_url=server.base_url, max_retries=0
    )


def url(n: int | str) -> str:
    return f"http://ex.com/{n}"


def test_collection(apify: ApifyClient) -> None:
    name = f"rq-{uuid.uuid4().hex[:10]}"
    created = apify.request_queues().get_or_create(name=name)
    assert created.name == name
    assert str(created.console_url).endswith(f"/console/request-queues/{created.id}")
    assert apify.request_queues().get_or_create(name=name).id == created.id
    unnamed = apify.request_queues().get_or_create()
    listed = apify.request_queues().list(unnamed=True, desc=True, limit=1000)
    ids = {item.id for item in listed.items}
    assert {created.id, unnamed.id} <= ids
    assert created.id in {item.id for item in apify.request_queues().iterate(unnamed=False)}
    assert apify.request_queues().list(ownership="ownedByMe").total >= 1
    queue = apify.request_queue(created.id)
    updated = queue.update(name=name + "-x", general_access="ANYONE_WITH_ID_CAN_READ")
    assert updated.name == name + "-x"
    assert updated.general_access == "ANYONE_WITH_ID_CAN_READ"
    assert apify.request_queue(f"admin~{name}-x").get().id == created.id  # type: ignore[union-attr]
    queue.delete()
    assert queue.get() is None
    queue.delete()  # a 404 is swallowed


def test_requests(apify: ApifyClient) -> None:
    created = apify.request_queues().get_or_create()
    rq = apify.request_queue(created.id, client_key="client-abc")
    first = rq.add_request({"uniqueKey": url(1), "url": url(1), "method": "GET", "userData": {"label": "A"}})
    assert first.request_id == request_id(url(1))
    assert not first.was_already_present
    front = rq.add_request({"uniqueKey": url(2), "url": url(2), "userData": {"x": 1}}, forefront=True)
    many: list[Any] = [{"uniqueKey": url(i), "url": url(i)} for i in range(3, 63)]
    batch = rq.batch_add_requests(many)
    assert len(batch.processed_requests) == 60
    assert batch.unprocessed_requests == []
    assert [p.unique_key for p in batch.processed_requests[:2]] == [url(3), url(4)]

    head = rq.list_head(limit=5)
    assert [i.id for i in head.items] == [
        front.request_id,
        first.request_id,
        *(request_id(url(i)) for i in (3, 4, 5)),
    ]
    assert head.queue_modified_at.tzinfo is not None
    assert head.had_multiple_clients is False

    locked = rq.list_and_lock_head(lock_duration=timedelta(seconds=60), limit=3)
    assert len(locked.items) == 3
    assert all(i.lock_expires_at.tzinfo for i in locked.items)
    assert locked.lock_secs == 60
    target = locked.items[0].id
    prolonged = rq.prolong_request_lock(target, lock_duration=timedelta(seconds=120), forefront=False)
    assert prolonged is not None
    assert prolonged.lock_expires_at > locked.items[0].lock_expires_at
    rq.delete_request_lock(target, forefront=True)
    assert rq.list_head(limit=1).items[0].id == target

    got = rq.get_request(front.request_id)
    assert got is not None
    assert got.user_data is not None
    assert got.unique_key == url(2)
    done: Any = {**got.model_dump(by_alias=True, exclude_none=True), "handledAt": "2024-01-01T00:00:00Z"}
    handled = rq.update_request(done)
    assert handled.was_already_present
    assert not handled.was_already_handled
    reclaimed = rq.update_request(
        {"id": front.request_id, "uniqueKey": url(2), "url": url(2)}, forefront=True
    )
    assert reclaimed.was_already_handled
    # Upsert of an id the queue has never seen.
    fresh = rq.update_request({"id": request_id(url("new")), "uniqueKey": url("new"), "url": url("new")})
    assert not fresh.was_already_present
    assert rq.get_request("missing") is None

    rq.delete_request(fresh.request_id)
    with pytest.raises(ApifyApiError):
        rq.delete_request(fresh.request_id)  # a 404 here raises in the client

    listed = rq.list_requests(limit=10)
    assert len(listed.items) == 10
    assert listed.next_cursor
    pending = rq.list_requests(limit=5, filter=["pending", "locked"])
    assert len(pending.items) == 5
    assert len(list(rq.iterate_requests(chunk_size=25))) == 62

    unlocked = rq.unlock_requests()
    assert unlocked.unlocked_count == 2  # the third was released by delete_request_lock
    gone: list[Any] = [{"id": request_id(url(3))}, {"uniqueKey": url(4)}]
    deleted = rq.batch_delete_requests(gone)
    assert len(deleted.processed_requests) == 2
    assert deleted.unprocessed_requests == []

    meta = rq.get()
    assert meta is not None
    assert (meta.total_request_count, meta.handled_request_count, meta.pending_request_count) == (60, 0, 60)
    assert meta.had_multiple_clients is False


def test_a_request_sent_with_only_its_url_is_read_by_the_sdk(apify: ApifyClient) -> None:
    """The clients' own examples add requests with only `uniqueKey` and `url`. The Apify SDK turns every
    request it reads (the list that primes its cache, the head, one request) into a Crawlee Request, which
    refuses a null `method`, `retryCount`, `headers`, `userData` or `noRetry`: an Actor could not take one
    request from a queue seeded that way. The reference requires `method` and `retryCount` on each request."""
    created = apify.request_queues().get_or_create()
    rq = apify.request_queue(created.id, client_key="seeder")
    bare = rq.add_request({"uniqueKey": url("bare"), "url": url("bare")})
    batch: list[Any] = [{"uniqueKey": url("bare-batch"), "url": url("bare-batch")}]
    rq.batch_add_requests(batch)
    rq.update_request(
        {"id": request_id(url("bare-put")), "uniqueKey": url("bare-put"), "url": url("bare-put")}
    )
    full: Any = {"uniqueKey": url("post"), "url": url("post"), "method": "POST", "retryCount": 2}
    full.update(headers={"a": "b"}, userData={"label": "L"}, noRetry=True)
    rq.add_request(full)

    def crawlee(request: Any) -> CrawleeRequest:
        # What the SDK does with each (apify.storage_clients._apify._utils.to_crawlee_request).
        return CrawleeRequest.model_validate(request.model_dump(by_alias=True, mode="json"))

    got = rq.get_request(bare.request_id)
    assert got is not None
    assert (got.method, got.retry_count, got.headers, got.no_retry) == ("GET", 0, {}, False)
    assert got.user_data is not None
    listed = sorted((crawlee(r) for r in rq.list_requests().items), key=lambda r: r.url)
    assert [(r.method, r.retry_count, dict(r.headers), r.no_retry) for r in listed] == [
        ("GET", 0, {}, False), ("GET", 0, {}, False), ("GET", 0, {}, False), ("POST", 2, {"a": "b"}, True),
    ]  # fmt: skip
    assert listed[-1].label == "L"
    head = [crawlee(item) for item in rq.list_head(limit=10).items]
    assert [(r.method, r.retry_count) for r in head] == [("GET", 0)] * 3 + [("POST", 2)]
    locked = rq.list_and_lock_head(lock_duration=timedelta(seconds=60), limit=25).items
    assert [(crawlee(item).method, item.retry_count) for item in locked] == [("GET", 0)] * 3 + [("POST", 2)]
