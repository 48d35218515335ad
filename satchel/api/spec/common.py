"""What every resource's OpenAPI operations share: schema helpers, the error responses, shared schemas, and
one parameter object per path parameter name.

A path parameter is declared once here under its template name (`{storeId}` is PATH_PARAMS["storeId"]), and
the document builder attaches it to every route whose template names it, so two routes cannot describe the
same parameter differently.
"""

from __future__ import annotations

from typing import Any

from satchel.service.validation import MAX_USERNAME

Schema = dict[str, Any]

# Every named schema of the document (its components): common ones below, each resource module adds its own.
SCHEMAS: dict[str, Schema] = {}


# What a field means, by its name, wherever a schema has it without a description of its own (a field whose
# meaning differs in one schema carries its own description there).
FIELDS = {
    # storages: key-value stores, datasets, request queues
    "id": "Its unique id",
    "name": "Its name, unique among the owner's storages of its kind; null (or empty) when unnamed",
    "title": "A free-text title",
    "userId": "The id of the user it belongs to",
    "username": "The username of the user it belongs to",
    "createdAt": "When it was created",
    "modifiedAt": "When it last changed",
    "accessedAt": "When it was last read, written or listed (unnamed storages expire counting from this)",
    "actId": "The id of the Actor whose run made it; null if no run did",
    "actRunId": "The id of the run that made it (it is that run's default storage); null if none did",
    "consoleUrl": "Its page in Satchel's Console",
    "generalAccess": (
        "What callers without a token or a share may do: RESTRICTED (nothing), ANYONE_WITH_ID_CAN_READ, "
        "ANYONE_WITH_NAME_CAN_READ, or FOLLOW_USER_SETTING (the owner's defaultGeneralAccess)"
    ),
    "stats": "Counters of its use",
    "readCount": "Reads counted so far",
    "writeCount": "Writes counted so far",
    "deleteCount": "Deletes counted so far",
    "listCount": "Listings counted so far",
    "storageBytes": "Bytes its contents take, as stored",
    "s3StorageBytes": "Kept for compatibility with the hosted API; always 0 here",
    # key-value stores
    "keysPublicUrl": "A URL that lists its keys without a token (signed, for stores that are not public)",
    "recordsPublicUrl": "A URL that downloads its records as a ZIP without a token (signed when needed)",
    "key": "The record's key",
    "size": "The record's size in bytes, as stored (compressed, if it was sent with a Content-Encoding)",
    "recordPublicUrl": "A URL that reads the record without a token (signed, for stores that are not public)",
    "exclusiveStartKey": "The key this page starts after; null for the first page",
    "nextExclusiveStartKey": "The exclusiveStartKey that gets the next page; null when this is the last",
    "isTruncated": "Whether more keys follow this page",
    "access": "READ (read only) or WRITE (read and write)",
    # datasets
    "itemCount": "How many items it holds",
    "cleanItemCount": "How many of its items have at least one field that is not hidden (`#` names hide)",
    "itemsPublicUrl": "A URL that reads its items without a token (signed, for datasets that are not public)",
    # request queues
    "totalRequestCount": "Requests in the queue, handled or not",
    "handledRequestCount": "Requests marked handled (handledAt set)",
    "pendingRequestCount": "Requests not handled yet",
    "hadMultipleClients": (
        "Whether more than one client (told apart by clientKey) has used the queue: a client that sees false "
        "may trust its own cache of the queue"
    ),
    "queueModifiedAt": "When a request of the queue was last added, changed or locked",
    "uniqueKey": "What makes requests the same: a second request with this uniqueKey is not added",
    "url": "The URL to fetch",
    "method": "The HTTP method to fetch it with",
    "payload": "The body to send with the request, for methods that have one",
    "headers": "HTTP headers to send with the request",
    "userData": "Anything the crawler keeps with the request, as JSON",
    "retryCount": "How many times fetching it was retried",
    "noRetry": "Whether a failed fetch is not to be retried",
    "errorMessages": "The errors fetching it failed with, oldest first",
    "loadedUrl": "The URL finally loaded, after redirects",
    "wasAlreadyPresent": "Whether a request with this uniqueKey was in the queue already (none was added)",
    "wasAlreadyHandled": "Whether that request was already handled",
    "processedRequests": "The requests this call dealt with",
    "unprocessedRequests": "The requests this call did not deal with; send them again",
    "lockExpiresAt": "When the caller's lock on the request runs out",
    "lockSecs": "How long the locks last, in seconds",
    "clientKey": "The client the locks are held for",
    "exclusiveStartId": "The request id this page starts after; null when the page was asked for by cursor",
    "cursor": "The cursor this page was asked for with; null for the first page",
    # runs
    "actorTaskId": "Always null: Satchel has no Actor tasks",
    "status": "The run's status",
    "startedAt": "When the run started",
    "finishedAt": "When the run finished; null while it runs",
    "buildNumber": "Satchel builds nothing: always 0.0.1",
    "meta": "How the run came to be",
    "origin": "How the run was started (API, or CLI for `satchel run`)",
    "usageTotalUsd": "What the run cost: always 0 here",
    "defaultKeyValueStoreId": "The id of the run's own key-value store",
    "defaultDatasetId": "The id of the run's own dataset",
    "defaultRequestQueueId": "The id of the run's own request queue",
    "statusMessage": "What the run says it is doing, for people to read",
    "isStatusMessageTerminal": "Whether statusMessage is the run's last word",
    "exitCode": "The exit code of the run's process; null until it ends",
    "options": "The options the run was started with",
    "build": "The build asked for (Satchel has none to choose from)",
    "memoryMbytes": "Memory asked for, in megabytes (Satchel limits nothing)",
    "diskMbytes": "Disk asked for, in megabytes (Satchel limits nothing)",
    "inputBodyLen": "Size of the run's INPUT in bytes",
    "restartCount": "Times the run was restarted: always 0 here",
    "resurrectCount": "Times a finished run was resurrected: always 0 here",
    "computeUnits": "Compute units used: always 0 here",
    "durationMillis": "How long the run took, in milliseconds (so far, while it runs)",
    "runTimeSecs": "How long the run took, in seconds (so far, while it runs)",
    "chargedEventCounts": "Per pay-per-event event name, how many events were charged",
    "eventName": "The name of the event to charge",
    # users
    "profile": "The user's public profile (empty: Satchel keeps none)",
    "defaultGeneralAccess": "What the user's storages whose generalAccess is FOLLOW_USER_SETTING allow",
    # pages and errors
    "items": "This page's entries",
    "count": "How many entries this page holds",
    "total": "How many there are in all",
    "offset": "How many were skipped before this page",
    "limit": "The most this page could hold",
    "desc": "Whether the newest come first",
    "unnamed": "Whether unnamed ones are listed too",
    "data": "The answer",
    "error": "What went wrong",
    "message": "The error, for people to read",
}


def described(schema: Schema) -> Schema:
    """The schema with FIELDS' description on each field (at any depth) that has none of its own."""
    out = dict(schema)
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {
            name: described(
                field
                if "description" in field or name not in FIELDS
                else {**field, "description": FIELDS[name]}
            )
            for name, field in schema["properties"].items()
        }
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            out[key] = described(schema[key])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list):
            out[key] = [described(part) for part in schema[key]]
    return out


def register(schemas: dict[str, Schema]) -> None:
    """Add named schemas to the document's components, their fields described; a name is given once."""
    taken = SCHEMAS.keys() & schemas.keys()
    if taken:
        raise ValueError(f"OpenAPI schemas defined twice: {sorted(taken)}")
    SCHEMAS.update({name: described(schema) for name, schema in schemas.items()})


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], *, optional: tuple[str, ...] = (), closed: bool = True) -> Schema:
    """An object with these fields; closed (the default, for what the server sends): no other fields."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": not closed,
    }


def data(schema: Schema) -> Schema:
    """The success envelope, `{"data": ...}`."""
    return obj({"data": schema})


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer", "minimum": 0}
BOOLEAN: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
URL: Schema = {"type": "string", "format": "uri"}
KEY: Schema = {"type": "string", "pattern": "^[a-zA-Z0-9!\\-_.'()]{1,256}$"}
USERNAME: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_USERNAME}
FLAG: Schema = {"type": "boolean"}
LIMIT: Schema = {"type": "integer", "minimum": 0}

register(
    {
        "Error": obj(
            {
                "error": obj(
                    {
                        "type": {**STRING, "description": "A stable, machine-readable error type"},
                        "message": STRING,
                        "data": {
                            "type": "object",
                            "description": (
                                "Details, for the errors that have them: a push whose items fail the"
                                " dataset's schema (`schema-validation-error`) lists them in `invalidItems`,"
                                " each with its `itemPosition` and `validationErrors` (AJV's shape:"
                                " `instancePath`, `schemaPath`, `keyword`, `params`, `message`)"
                            ),
                        },
                    },
                    optional=("data",),
                )
            }
        ),
        "Stats": obj(
            {
                name: INTEGER
                for name in (
                    "readCount",
                    "writeCount",
                    "deleteCount",
                    "listCount",
                    "storageBytes",
                    "s3StorageBytes",
                )
            }
        ),
    }
)

ERRORS = {
    400: (
        "The request is malformed: a bad parameter, key, body or encoding; or items that fail their dataset's"
        " schema (`schema-validation-error`, with `data.invalidItems`)"
    ),
    401: "No token where one is needed (`token-not-provided`), or an unknown one (`invalid-token`)",
    403: "Not allowed (`insufficient-permissions`), or a wrong or expired signature (`invalid-signature`)",
    404: "No such store, record, user or route, or one the caller may not see",
    405: "The endpoint does not take this method",
    409: "The name is taken",
    413: "The body is over `max_record_bytes` (or decodes past `max_decoded_bytes`); JSON bodies over 1 MiB",
    415: "A Content-Encoding other than gzip, deflate, br or identity",
    429: "Over a rate limit",
    507: "The server's disk is full",
}
# For operations anyone may call: no token, or either kind of token.
ANYONE: list[dict[str, list[str]]] = [{}, {"bearer": []}, {"token": []}]
NO_CONTENT = {"204": {"description": "Done (also when there was nothing to delete)"}}


# Each error answer once, under components/responses, for the operations to refer to: written out in each of
# them, they were 40% of the document (and of what the docs page parses before it shows anything).
ERROR_RESPONSES: dict[str, dict[str, Any]] = {
    f"Error{status}": {"description": text, "content": {"application/json": {"schema": ref("Error")}}}
    for status, text in ERRORS.items()
}
ERROR_RESPONSES["Error429"]["headers"] = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds until the limit's window starts over",
    }
}


def responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    out = dict(ok)
    for status in (400, 401, 403, 404, 405, 429, *errors):
        out[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    return out


def ok_json(status: int, schema: Schema, description: str) -> dict[str, Any]:
    return {
        str(status): {"description": description, "content": {"application/json": {"schema": data(schema)}}}
    }


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def path(name: str, schema: Schema, description: str, example: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
        "example": example,
    }


# One parameter object per path parameter name, as templates spell them; the builder adds them to every route.
PATH_PARAMS: dict[str, dict[str, Any]] = {
    param["name"]: param
    for param in (
        path(
            "storeId",
            STRING,
            "The store's id, `username~store-name`, or `~store-name` (the caller's)",
            "~my-store",
        ),
        path("recordKey", KEY, "The record's key", "INPUT"),
        path("username", USERNAME, "The user to share with", "someone"),
        path("userId", STRING, "A user's id or username", "someone"),
        path("runId", STRING, "An Actor run's id", "3KH8gEpp4d8uQSe8T"),
        path("actorId", STRING, "The Actor's id, `username~name`, or `~name` (the caller's)", "~my-actor"),
        path("datasetId", STRING, "The dataset's id, `username~name`, or `~name`", "~my-dataset"),
        path("queueId", STRING, "The request queue's id, `username~name`, or `~name`", "~my-queue"),
        path("requestId", STRING, "A request's id: derived from its uniqueKey", "Sbz3Gqp9BYNtI6D"),
    )
}


OWNERSHIP: Schema = {"enum": ["ownedByMe", "sharedWithMe"]}


def storage_operations(
    noun: str, plural: str, schema: str, name: str, holds: str
) -> tuple[Schema, Schema, Schema, Schema]:
    """The list, get, update and delete operations of one kind of storage, the same for every kind.

    noun and plural name it in summaries ("dataset", "datasets"), schema is its object's component, name its
    operations' (`list{name}s`, `get{name}`, ...), holds what deleting it deletes with it.
    """
    listing = {
        "operationId": f"list{name}s",
        "summary": f"The caller's {plural}, and those shared with them",
        "parameters": [
            query("offset", LIMIT, f"How many {plural} to skip"),
            query("limit", LIMIT, "At most this many (clamped to 1000; 0 means 1000)"),
            query("desc", FLAG, "Newest first"),
            query("unnamed", FLAG, f"Also list unnamed {plural}"),
            query("ownership", OWNERSHIP, f"Only owned or only shared {plural}"),
        ],
        "responses": responses(ok_json(200, ref(f"{schema}List"), f"A page of {plural}")),
    }
    get = {
        "operationId": f"get{name}",
        "summary": f"A {noun}",
        "responses": responses(ok_json(200, ref(schema), f"The {noun}")),
    }
    update = {
        "operationId": f"update{name}",
        "summary": f"Rename a {noun}, change its title or general access (owner only)",
        "requestBody": {"required": False, "content": {"application/json": {"schema": ref("StoreChanges")}}},
        "responses": responses(ok_json(200, ref(schema), f"The {noun} as changed"), 409, 413, 415, 507),
    }
    delete = {
        "operationId": f"delete{name}",
        "summary": f"Delete a {noun} and its {holds} (owner only)",
        "responses": responses(NO_CONTENT, 507),
    }
    return listing, get, update, delete
