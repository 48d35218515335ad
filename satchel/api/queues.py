"""Request queue endpoints: the collection, a queue, its requests, its head and locks; and their wire shapes.

Bodies: a request or a batch is JSON (gzip, deflate or br), up to 10 MiB decoded; the queue's own POST, the
head lock and the lock endpoints take none (the clients send none, and no Content-Type).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from satchel.api import wire
from satchel.api.http import (
    Call,
    body_chunks,
    content_encoding,
    declared_length,
    read_creation,
    read_json_object,
)
from satchel.clock import iso, now_ms
from satchel.service.access import Level
from satchel.service.queue_requests import DEFAULTS, make_cursor, read_payload
from satchel.service.queues import Head, QueueView, RequestPage
from satchel.storage.rows import QueueState, RequestAdded, RequestRow, StoreRow

DEFAULT_REQUESTS = 100


def queue_url(base_url: str, queue_id: str) -> str:
    return f"{base_url}/v2/request-queues/{queue_id}"


def queue(view: QueueView, base_url: str, *, listed: bool = False) -> dict[str, Any]:
    """A queue as the API shows it. In a list, an unnamed queue's name is "" (apify-client 3.4 requires a
    string there), while its own object says null."""
    row, state = view.store, view.state
    name = row.name
    if listed and name is None:
        name = ""
    return {
        "id": row.id,
        "name": name,
        "title": row.title,
        "userId": row.user_id,
        "username": row.username,
        "createdAt": iso(row.created_at),
        # Any change of a request or a lock modifies the queue.
        "modifiedAt": iso(max(row.modified_at, state.modified_at)),
        "accessedAt": iso(max(row.accessed_at, state.modified_at)),
        "totalRequestCount": state.total,
        "handledRequestCount": state.handled,
        "pendingRequestCount": state.total - state.handled,
        "hadMultipleClients": state.had_multiple_clients,
        "consoleUrl": f"{base_url}/console/request-queues/{row.id}",
        "actId": row.act_id,
        "actRunId": row.act_run_id,
        "generalAccess": row.general_access,
        "stats": {
            "readCount": row.stats.read_count,
            "writeCount": row.stats.write_count,
            "deleteCount": row.stats.delete_count,
            "storageBytes": row.stats.storage_bytes,
        },
    }


def request(row: RequestRow, now: int | None = None) -> dict[str, Any]:
    """A request as stored, with its lock while one is held (as the hosted API shows it)."""
    data: dict[str, Any] = _filled(orjson.loads(row.body))
    if now is not None and row.lock_expires_at is not None and row.lock_expires_at > now:
        data["lockExpiresAt"] = iso(row.lock_expires_at)
        data["lockByClient"] = row.lock_client or None
    return data


HEAD_FIELDS = ("id", "uniqueKey", "url", "method", "retryCount")  # what the head shows of each request


def head_item(row: RequestRow, *, locked: bool = False) -> dict[str, Any]:
    body = _filled(orjson.loads(row.body))
    item: dict[str, Any] = {k: body[k] for k in HEAD_FIELDS if k in body}
    if locked and row.lock_expires_at is not None:
        item["lockExpiresAt"] = iso(row.lock_expires_at)
    return item


def _filled(body: dict[str, Any]) -> dict[str, Any]:
    """With the DEFAULTS where it lacks them: requests stored before they were filled in on the way in."""
    for field, default in DEFAULTS.items():
        if body.get(field) is None:
            body[field] = default.copy() if isinstance(default, dict) else default
    return body


def added(result: RequestAdded) -> dict[str, Any]:
    return {
        "requestId": result.id,
        "wasAlreadyPresent": result.was_already_present,
        "wasAlreadyHandled": result.was_already_handled,
    }


def _head(head: Head, *, locked: bool = False) -> dict[str, Any]:
    return {
        "limit": head.limit,
        "queueModifiedAt": iso(head.state.modified_at),
        "hadMultipleClients": head.state.had_multiple_clients,
        "items": [head_item(row, locked=locked) for row in head.items],
    }


async def _body(call: Call) -> Any:
    request = call.request
    return await read_payload(body_chunks(request), content_encoding(request), declared_length(request))


def _client_key(call: Call) -> str | None:
    return call.text("clientKey")


# --- the collection and a queue


async def list_queues(call: Call) -> Response:
    args = call.listing()
    found = await call.services.queues.page(call.caller, args)

    def item(row: StoreRow, level: Level) -> dict[str, Any]:
        state = found.states.get(row.pk) or QueueState()
        return queue(QueueView(row, level, state), call.base_url, listed=True)

    return await wire.page_response(
        lambda: wire.storage_page(found.page, unnamed=args.unnamed, item=item), len(found.page.items)
    )


async def create_queue(call: Call) -> Response:
    name, _ = await read_creation(call)  # the clients send no body; a queue has no schema
    view, created = await call.services.queues.get_or_create(call.caller, name)
    headers = {"location": queue_url(call.base_url, view.store.id)}
    return wire.json_response(queue(view, call.base_url), 201 if created else 200, headers)


async def get_queue(call: Call) -> Response:
    view = await call.services.queues.get(call.caller, call.params["queueId"])
    return wire.json_response(queue(view, call.base_url))


async def update_queue(call: Call) -> Response:
    changes = await read_json_object(call.request)
    view = await call.services.queues.update(call.caller, call.params["queueId"], changes)
    return wire.json_response(queue(view, call.base_url))


async def delete_queue(call: Call) -> Response:
    await call.services.queues.delete(call.caller, call.params["queueId"])
    return Response(status_code=204)


# --- requests


async def add_request(call: Call) -> Response:
    result = await call.services.queues.add(
        call.caller, call.params["queueId"], await _body(call),
        forefront=call.flag("forefront"), client_key=_client_key(call),
    )  # fmt: skip
    return wire.json_response(added(result), 201)


async def add_requests(call: Call) -> Response:
    results = await call.services.queues.add_batch(
        call.caller, call.params["queueId"], await _body(call),
        forefront=call.flag("forefront"), client_key=_client_key(call),
    )  # fmt: skip
    processed = [{**added(result), "uniqueKey": key} for result, key in results]
    return wire.json_response({"processedRequests": processed, "unprocessedRequests": []}, 201)


async def delete_requests(call: Call) -> Response:
    named = await call.services.queues.delete_batch(
        call.caller, call.params["queueId"], await _body(call), client_key=_client_key(call)
    )
    return wire.json_response({"processedRequests": named, "unprocessedRequests": []})


async def list_requests(call: Call) -> Response:
    page: RequestPage = await call.services.queues.list_requests(
        call.caller,
        call.params["queueId"],
        limit=call.number("limit", DEFAULT_REQUESTS),
        cursor=call.text("cursor"),
        exclusive_start_id=call.text("exclusiveStartId"),
        filters=call.text("filter"),
        client_key=_client_key(call),
    )
    now = now_ms()

    def build() -> dict[str, Any]:
        return {
            "items": [request(row, now) for row in page.items],
            "count": len(page.items),
            "limit": page.limit,
            "exclusiveStartId": call.text("exclusiveStartId"),
            "cursor": call.text("cursor"),
            "nextCursor": make_cursor(page.next_after) if page.next_after else None,
        }

    return await wire.page_response(build, len(page.items))


async def get_request(call: Call) -> Response:
    row = await call.services.queues.get_request(
        call.caller, call.params["queueId"], call.params["requestId"]
    )
    return wire.json_response(request(row, now_ms()))


async def update_request(call: Call) -> Response:
    result = await call.services.queues.put_request(
        call.caller, call.params["queueId"], call.params["requestId"], await _body(call),
        forefront=call.flag("forefront"), client_key=_client_key(call),
    )  # fmt: skip
    return wire.json_response(added(result))


async def delete_request(call: Call) -> Response:
    await call.services.queues.delete_request(
        call.caller, call.params["queueId"], call.params["requestId"], client_key=_client_key(call)
    )
    return Response(status_code=204)


# --- the head and locks


async def get_head(call: Call) -> Response:
    head = await call.services.queues.head(
        call.caller, call.params["queueId"], limit=call.number("limit", 0), client_key=_client_key(call)
    )
    return wire.json_response(_head(head))


async def lock_head(call: Call) -> Response:
    await read_json_object(call.request)
    head, has_locked, seconds = await call.services.queues.lock_head(
        call.caller, call.params["queueId"], lock_secs=call.text("lockSecs"), limit=call.number("limit", 0),
        client_key=_client_key(call),
    )  # fmt: skip
    data = _head(head, locked=True)
    data.update(
        lockSecs=int(seconds) if seconds.is_integer() else seconds,
        queueHasLockedRequests=has_locked,
        clientKey=_client_key(call),
    )
    return wire.json_response(data)


async def prolong_lock(call: Call) -> Response:
    await read_json_object(call.request)
    expires = await call.services.queues.prolong(
        call.caller, call.params["queueId"], call.params["requestId"], lock_secs=call.text("lockSecs"),
        forefront=call.flag("forefront"), client_key=_client_key(call),
    )  # fmt: skip
    return wire.json_response({"lockExpiresAt": iso(expires)})


async def delete_lock(call: Call) -> Response:
    await read_json_object(call.request)
    await call.services.queues.release(
        call.caller, call.params["queueId"], call.params["requestId"],
        forefront=call.flag("forefront"), client_key=_client_key(call),
    )  # fmt: skip
    return Response(status_code=204)


async def unlock_requests(call: Call) -> Response:
    await read_json_object(call.request)
    count = await call.services.queues.unlock(
        call.caller, call.params["queueId"], client_key=_client_key(call)
    )
    return wire.json_response({"unlockedCount": count})
