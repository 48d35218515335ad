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


def register(schemas: dict[str, Schema]) -> None:
    """Add named schemas to the document's components; a name is given once."""
    taken = SCHEMAS.keys() & schemas.keys()
    if taken:
        raise ValueError(f"OpenAPI schemas defined twice: {sorted(taken)}")
    SCHEMAS.update(schemas)


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
                    }
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
    400: "The request is malformed: a bad parameter, key, body or encoding",
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


def responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    out = dict(ok)
    for status in (400, 401, 403, 404, 405, 429, *errors):
        out[str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": ref("Error")}},
        }
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
