"""OpenAPI schemas and operations of the request queue endpoints (routing.ROUTES names them per method)."""

from __future__ import annotations

from typing import Any

from satchel.api.spec.common import (
    BOOLEAN,
    FLAG,
    INTEGER,
    LIMIT,
    NO_CONTENT,
    STRING,
    TIME,
    URL,
    Schema,
    nullable,
    obj,
    ok_json,
    query,
    ref,
    register,
    responses,
    storage_operations,
)
from satchel.service.access import GENERAL_ACCESS
from satchel.service.queue_requests import (
    DEFAULT_HEAD,
    MAX_BATCH,
    MAX_CLIENT_KEY,
    MAX_HEAD,
    MAX_LIST,
    MAX_LOCK_SECS,
    MAX_LOCKED_HEAD,
)

NAME: Schema = {"type": "string", "pattern": "^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"}
REQUEST_ID: Schema = {"type": "string", "description": "sha256(uniqueKey), base64, without +/=, first 15"}
COUNTS = ("totalRequestCount", "handledRequestCount", "pendingRequestCount")

register(
    {
        "RequestQueue": obj(
            {
                "id": STRING,
                "name": {**nullable(STRING), "description": 'In lists, "" for an unnamed queue'},
                "title": nullable(STRING),
                "userId": STRING,
                "username": STRING,
                "createdAt": TIME,
                "modifiedAt": TIME,
                "accessedAt": TIME,
                **{name: INTEGER for name in COUNTS},
                "hadMultipleClients": BOOLEAN,
                "consoleUrl": URL,
                "actId": nullable(STRING),
                "actRunId": nullable(STRING),
                "generalAccess": {"enum": list(GENERAL_ACCESS)},
                "stats": obj(
                    {n: INTEGER for n in ("readCount", "writeCount", "deleteCount", "storageBytes")}
                ),
            }
        ),
        "RequestQueueList": obj(
            {
                "total": INTEGER,
                "offset": INTEGER,
                "limit": {"type": "integer", "minimum": 1},
                "desc": BOOLEAN,
                "count": INTEGER,
                "unnamed": BOOLEAN,
                "items": {"type": "array", "items": ref("RequestQueue")},
            }
        ),
        # What a client sends: any fields are kept; these have types the clients read back.
        "Request": {
            "type": "object",
            "properties": {
                "id": REQUEST_ID,
                "uniqueKey": {**STRING, "description": "Compared as sent; the url when absent"},
                "url": STRING,
                "method": STRING,
                "retryCount": INTEGER,
                "loadedUrl": nullable(STRING),
                "payload": {"anyOf": [STRING, {"type": "object"}, {"type": "null"}]},
                "headers": nullable({"type": "object"}),
                "userData": nullable({"type": "object"}),
                "noRetry": nullable(BOOLEAN),
                "errorMessages": nullable({"type": "array"}),
                "handledAt": {**nullable(TIME), "description": "Set: handled. Absent or null: pending"},
                "lockExpiresAt": {**TIME, "description": "Only in answers, while a lock is held"},
                "lockByClient": {**nullable(STRING), "description": "Only in answers, while a lock is held"},
            },
            "required": ["url"],
        },
        "RequestAdded": obj(
            {"requestId": REQUEST_ID, "wasAlreadyPresent": BOOLEAN, "wasAlreadyHandled": BOOLEAN}
        ),
        "BatchAdded": obj(
            {
                "processedRequests": {
                    "type": "array",
                    "items": obj(
                        {
                            "requestId": REQUEST_ID,
                            "uniqueKey": STRING,
                            "wasAlreadyPresent": BOOLEAN,
                            "wasAlreadyHandled": BOOLEAN,
                        }
                    ),
                },
                "unprocessedRequests": {"type": "array", "items": {"type": "object"}},
            }
        ),
        "BatchDeleted": obj(
            {
                "processedRequests": {
                    "type": "array",
                    "items": obj({"id": REQUEST_ID, "uniqueKey": STRING}, optional=("uniqueKey",)),
                },
                "unprocessedRequests": {"type": "array", "items": {"type": "object"}},
            }
        ),
        "RequestToDelete": {
            "type": "object",
            "properties": {"id": REQUEST_ID, "uniqueKey": STRING},
            "description": "One of id or uniqueKey",
        },
        "RequestPage": obj(
            {
                "items": {"type": "array", "items": ref("Request")},
                "count": INTEGER,
                "limit": INTEGER,
                "exclusiveStartId": nullable(STRING),
                "cursor": nullable(STRING),
                "nextCursor": {**nullable(STRING), "description": "null on the last page"},
            }
        ),
        "QueueHead": obj(
            {
                "limit": INTEGER,
                "queueModifiedAt": TIME,
                "hadMultipleClients": BOOLEAN,
                "items": {"type": "array", "items": ref("HeadItem")},
            }
        ),
        "HeadItem": obj(
            {"id": REQUEST_ID, "uniqueKey": STRING, "url": STRING, "method": STRING, "retryCount": INTEGER}
        ),
        "LockedHead": obj(
            {
                "limit": INTEGER,
                "queueModifiedAt": TIME,
                "hadMultipleClients": BOOLEAN,
                "lockSecs": {"type": "number"},
                "queueHasLockedRequests": {**BOOLEAN, "description": "Any pending request locked, by anyone"},
                "clientKey": nullable(STRING),
                "items": {"type": "array", "items": ref("LockedHeadItem")},
            }
        ),
        "LockedHeadItem": obj(
            {
                "id": REQUEST_ID,
                "uniqueKey": STRING,
                "url": STRING,
                "method": STRING,
                "retryCount": INTEGER,
                "lockExpiresAt": TIME,
            }
        ),
    }
)

CLIENT_KEY = query(
    "clientKey",
    {"type": "string", "maxLength": MAX_CLIENT_KEY},
    "Who calls: counts for hadMultipleClients (none is a new client each time) and owns locks",
)
FOREFRONT = query("forefront", FLAG, "To the front of the queue rather than the end")
LOCK_SECS = {
    **query(
        "lockSecs", {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_LOCK_SECS}, "Lock for this long"
    ),
    "required": True,
}
JSON_BODY = 413, 415, 507


def _body(schema: Schema, description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


# /v2/request-queues
LIST_QUEUES, GET_QUEUE, UPDATE_QUEUE, DELETE_QUEUE = storage_operations(
    "request queue", "request queues", "RequestQueue", "RequestQueue", "requests"
)
GET_OR_CREATE_QUEUE = {
    "operationId": "getOrCreateRequestQueue",
    "summary": "The caller's queue of this name, created if there is none (no body)",
    "parameters": [query("name", NAME, "The queue's name; none creates an unnamed queue")],
    "responses": responses(
        {**ok_json(201, ref("RequestQueue"), "Created"), **ok_json(200, ref("RequestQueue"), "It existed")},
        *JSON_BODY,
    ),
}

# /v2/request-queues/{queueId}

# /v2/request-queues/{queueId}/requests
LIST_REQUESTS = {
    "operationId": "listRequests",
    "summary": "A page of requests in id order",
    "parameters": [
        query("limit", LIMIT, f"At most this many (clamped to {MAX_LIST}; default 100)"),
        query("cursor", STRING, "nextCursor of the previous page"),
        query("exclusiveStartId", STRING, "Legacy: start after this id (not with cursor)"),
        query("filter", STRING, "pending, locked, or pending,locked (a union)"),
        CLIENT_KEY,
    ],
    "responses": responses(ok_json(200, ref("RequestPage"), "A page of requests")),
}
ADD_REQUEST = {
    "operationId": "addRequest",
    "summary": "Add a request unless its uniqueKey is there already",
    "parameters": [CLIENT_KEY, FOREFRONT],
    "requestBody": _body(ref("Request"), "The request; kept whole, unknown fields included"),
    "responses": responses(ok_json(201, ref("RequestAdded"), "Added, or found"), *JSON_BODY),
}

# /v2/request-queues/{queueId}/requests/batch
ADD_REQUESTS = {
    "operationId": "batchAddRequests",
    "summary": f"Add up to {MAX_BATCH} requests (10 MiB decoded)",
    "parameters": [CLIENT_KEY, FOREFRONT],
    "requestBody": _body({"type": "array", "maxItems": MAX_BATCH, "items": ref("Request")}, "The requests"),
    "responses": responses(ok_json(201, ref("BatchAdded"), "Each request added or found"), *JSON_BODY),
}
DELETE_REQUESTS = {
    "operationId": "batchDeleteRequests",
    "summary": f"Delete up to {MAX_BATCH} requests by id or uniqueKey (a DELETE with a body)",
    "parameters": [CLIENT_KEY],
    "requestBody": _body({"type": "array", "maxItems": MAX_BATCH, "items": ref("RequestToDelete")}, "Which"),
    "responses": responses(ok_json(200, ref("BatchDeleted"), "Deleted (or not there)"), *JSON_BODY),
}

# /v2/request-queues/{queueId}/requests/unlock
UNLOCK_REQUESTS = {
    "operationId": "unlockRequests",
    "summary": "Drop every lock the clientKey holds; the requests go to the end",
    "parameters": [CLIENT_KEY],
    "responses": responses(ok_json(200, obj({"unlockedCount": INTEGER}), "How many"), 507),
}

# /v2/request-queues/{queueId}/requests/{requestId}
GET_REQUEST = {
    "operationId": "getRequest",
    "summary": "A request as stored",
    "responses": responses(ok_json(200, ref("Request"), "The request")),
}
UPDATE_REQUEST = {
    "operationId": "updateRequest",
    "summary": "Write a request over the stored one, or add it; without handledAt it is pending again, "
    "requeued and unlocked",
    "parameters": [CLIENT_KEY, FOREFRONT],
    "requestBody": _body(ref("Request"), "The whole request; its id must be its uniqueKey's"),
    "responses": responses(ok_json(200, ref("RequestAdded"), "The state before the update"), *JSON_BODY),
}
DELETE_REQUEST = {
    "operationId": "deleteRequest",
    "summary": "Delete a request",
    "parameters": [CLIENT_KEY],
    "responses": responses(NO_CONTENT, 507),
}

# /v2/request-queues/{queueId}/requests/{requestId}/lock
PROLONG_LOCK = {
    "operationId": "prolongRequestLock",
    "summary": "Extend the caller's own lock to now + lockSecs",
    "parameters": [LOCK_SECS, CLIENT_KEY, FOREFRONT],
    "responses": responses(ok_json(200, obj({"lockExpiresAt": TIME}), "The new expiry"), 409, 507),
}
DELETE_LOCK = {
    "operationId": "deleteRequestLock",
    "summary": "Drop the caller's own lock; the request goes to the end (or the front)",
    "parameters": [CLIENT_KEY, FOREFRONT],
    "responses": responses(NO_CONTENT, 409, 507),
}

# /v2/request-queues/{queueId}/head and /head/lock
GET_HEAD = {
    "operationId": "getHead",
    "summary": "The first pending requests nobody holds a lock on, in queue order",
    "parameters": [
        query("limit", LIMIT, f"At most this many (default {DEFAULT_HEAD}, clamped to {MAX_HEAD})"),
        CLIENT_KEY,
    ],
    "responses": responses(ok_json(200, ref("QueueHead"), "The head")),
}
LOCK_HEAD = {
    "operationId": "getHeadAndLock",
    "summary": "Lock the head's first requests for the clientKey (no two callers get one request)",
    "parameters": [
        LOCK_SECS,
        query("limit", LIMIT, f"At most this many (default and clamp {MAX_LOCKED_HEAD})"),
        CLIENT_KEY,
    ],
    "responses": responses(ok_json(200, ref("LockedHead"), "The locked requests"), 507),
}
