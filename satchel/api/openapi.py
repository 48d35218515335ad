"""The OpenAPI 3.1 document of the API, served at `GET /v2/openapi.json`.

Written by hand, as data: the router is hand-rolled, so nothing could derive this from it. A test holds the
two together (every route in routing.ROUTES is here with exactly its methods, and nothing else is), and
schemathesis checks real answers against the schemas below.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from satchel.api.http import Call
from satchel.service.access import GENERAL_ACCESS
from satchel.service.validation import MAX_JSON_DEPTH, MAX_SCHEMA_BYTES, MAX_TITLE, MAX_USERNAME

Schema = dict[str, Any]


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
NAME: Schema = {"type": "string", "pattern": "^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"}
TITLE: Schema = {"type": "string", "maxLength": MAX_TITLE, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}
USERNAME: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_USERNAME}

SCHEMAS: dict[str, Schema] = {
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
    "KeyValueStore": obj(
        {
            "id": STRING,
            "name": nullable(STRING),
            "title": nullable(STRING),
            "userId": STRING,
            "username": STRING,
            "createdAt": TIME,
            "modifiedAt": TIME,
            "accessedAt": TIME,
            "actId": nullable(STRING),
            "actRunId": nullable(STRING),
            "consoleUrl": URL,
            "keysPublicUrl": URL,
            "recordsPublicUrl": URL,
            "generalAccess": {"enum": list(GENERAL_ACCESS)},
            "stats": ref("Stats"),
            "schema": {
                "type": "object",
                "description": "The store's schema, when it was created with one (not in store lists)",
            },
            "urlSigningSecretKey": {**STRING, "description": "Only for callers who may write"},
        },
        optional=("schema", "urlSigningSecretKey"),
    ),
    "KeyValueStoreList": obj(
        {
            "total": INTEGER,
            "offset": INTEGER,
            "limit": {"type": "integer", "minimum": 1},
            "desc": BOOLEAN,
            "count": INTEGER,
            "unnamed": BOOLEAN,
            "items": {"type": "array", "items": ref("KeyValueStore")},
        }
    ),
    "KeyPage": obj(
        {
            "items": {
                "type": "array",
                "items": obj({"key": KEY, "size": INTEGER, "recordPublicUrl": URL}),
            },
            "count": INTEGER,
            "limit": {"type": "integer", "minimum": 1},
            "exclusiveStartKey": nullable(STRING),
            "isTruncated": BOOLEAN,
            "nextExclusiveStartKey": nullable(KEY),
        }
    ),
    "Share": obj(
        {"userId": STRING, "username": STRING, "access": {"enum": ["READ", "WRITE"]}, "createdAt": TIME}
    ),
    "ShareList": obj({"total": INTEGER, "count": INTEGER, "items": {"type": "array", "items": ref("Share")}}),
    "Me": obj(
        {
            "id": STRING,
            "username": STRING,
            "profile": {"type": "object"},
            "createdAt": TIME,
            "defaultGeneralAccess": {"enum": list(GENERAL_ACCESS[:3])},
        }
    ),
    "PublicUser": obj({"username": STRING, "profile": {"type": "object"}}),
    "StoreChanges": {
        "type": "object",
        "properties": {
            "name": {
                "anyOf": [NAME, {"const": ""}, {"type": "null"}],
                "description": "Empty or null: unnamed",
            },
            "generalAccess": nullable({"enum": list(GENERAL_ACCESS)}),
            "title": nullable(TITLE),
        },
    },
    "NewStore": {
        "type": "object",
        "properties": {
            "name": NAME,
            "schema": {
                "type": "object",
                "description": f"At most {MAX_SCHEMA_BYTES} bytes as JSON, {MAX_JSON_DEPTH} levels deep",
            },
        },
    },
    "ShareAccess": obj({"access": {"enum": ["READ", "WRITE"]}}, closed=False),
}

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


FLAG: Schema = {"type": "boolean"}
LIMIT: Schema = {"type": "integer", "minimum": 0}
STORE_ID = path(
    "storeId", STRING, "The store's id, `username~store-name`, or `~store-name` (the caller's)", "~my-store"
)
RECORD_KEY = path("recordKey", KEY, "The record's key", "INPUT")
SIGNATURE = query("signature", STRING, "A signature from a public URL; grants reading without a token")
PREFIX = query("prefix", STRING, "Only keys that start with this")
COLLECTION = query("collection", STRING, "Only keys of this collection of the store's schema")
JSON_BODY = {"application/json": {"schema": {"type": "object"}}}
RECORD_BODY: dict[str, Any] = {
    "required": False,
    "description": "The record, stored exactly as sent with its Content-Type and Content-Encoding",
    "content": {"*/*": {"schema": {}}},
}
CONTENT_ENCODING = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "schema": {"enum": ["gzip", "deflate", "br", "identity"]},
    "description": "How the body is encoded; it is checked as it arrives and kept as it is",
}
RECORD_HEADERS = {
    name: {"schema": STRING, "description": description}
    for name, description in (
        ("Content-Type", "The type the record was stored with"),
        ("Content-Encoding", "The stored encoding, when the request's Accept-Encoding admits it"),
        ("Content-Length", "The length of this response's body"),
    )
}
NO_CONTENT = {"204": {"description": "Done (also when there was nothing to delete)"}}

PATHS: dict[str, dict[str, Any]] = {
    "/v2/key-value-stores": {
        "get": {
            "operationId": "listKeyValueStores",
            "summary": "The caller's stores, and those shared with them",
            "parameters": [
                query("offset", LIMIT, "How many stores to skip"),
                query("limit", LIMIT, "At most this many (clamped to 1000; 0 means 1000)"),
                query("desc", FLAG, "Newest first"),
                query("unnamed", FLAG, "Also list unnamed stores"),
                query(
                    "ownership", {"enum": ["ownedByMe", "sharedWithMe"]}, "Only owned or only shared stores"
                ),
            ],
            "responses": responses(ok_json(200, ref("KeyValueStoreList"), "A page of stores")),
        },
        "post": {
            "operationId": "getOrCreateKeyValueStore",
            "summary": "The caller's store of this name, created if there is none",
            "parameters": [
                {
                    **query("name", NAME, "The store's name; none creates an unnamed store"),
                    "example": "my-store",
                }
            ],
            "requestBody": {"required": False, "content": {"application/json": {"schema": ref("NewStore")}}},
            "responses": responses(
                {
                    **ok_json(201, ref("KeyValueStore"), "Created"),
                    **ok_json(200, ref("KeyValueStore"), "It already existed"),
                },
                413,
                415,
                507,
            ),
        },
    },
    "/v2/key-value-stores/{storeId}": {
        "parameters": [STORE_ID],
        "get": {
            "operationId": "getKeyValueStore",
            "summary": "A store",
            "responses": responses(ok_json(200, ref("KeyValueStore"), "The store")),
        },
        "put": {
            "operationId": "updateKeyValueStore",
            "summary": "Rename a store, change its title or general access (owner only)",
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": ref("StoreChanges")}},
            },
            "responses": responses(
                ok_json(200, ref("KeyValueStore"), "The store as changed"), 409, 413, 415, 507
            ),
        },
        "delete": {
            "operationId": "deleteKeyValueStore",
            "summary": "Delete a store and its records (owner only)",
            "responses": responses(NO_CONTENT, 507),
        },
    },
    "/v2/key-value-stores/{storeId}/keys": {
        "parameters": [STORE_ID],
        "get": {
            "operationId": "listKeys",
            "summary": "A page of keys in UTF-8 binary order",
            "parameters": [
                query("exclusiveStartKey", STRING, "Start after this key"),
                query("limit", LIMIT, "At most this many (clamped to 1000; 0 means 1000)"),
                PREFIX,
                COLLECTION,
                SIGNATURE,
            ],
            "responses": responses(ok_json(200, ref("KeyPage"), "A page of keys")),
        },
    },
    "/v2/key-value-stores/{storeId}/records": {
        "parameters": [STORE_ID],
        "get": {
            "operationId": "downloadRecords",
            "summary": "Every record (decoded) as one streamed ZIP archive",
            "parameters": [PREFIX, COLLECTION, SIGNATURE],
            "responses": responses(
                {
                    "200": {
                        "description": "A ZIP archive, one file per key",
                        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                    }
                }
            ),
        },
    },
    "/v2/key-value-stores/{storeId}/records/{recordKey}": {
        "parameters": [STORE_ID, RECORD_KEY],
        "get": {
            "operationId": "getRecord",
            "summary": "A record's body, decoded unless Accept-Encoding admits its stored encoding",
            "parameters": [
                SIGNATURE,
                query("attachment", FLAG, "Answer with Content-Disposition: attachment"),
                query("disableRedirect", FLAG, "Deprecated; does nothing (Satchel never redirects)"),
            ],
            "responses": responses(
                {
                    "200": {
                        "description": "The record, with the Content-Type it was stored with",
                        "headers": RECORD_HEADERS,
                        "content": {"*/*": {"schema": {}}},
                    }
                }
            ),
        },
        "head": {
            "operationId": "headRecord",
            "summary": "Whether a record exists, with the headers its GET would have",
            "parameters": [SIGNATURE],
            "responses": responses({"200": {"description": "It exists", "headers": RECORD_HEADERS}}),
        },
        "put": {
            "operationId": "putRecord",
            "summary": "Store a record",
            "parameters": [CONTENT_ENCODING],
            "requestBody": RECORD_BODY,
            "responses": responses(
                {**ok_json(201, {"type": "object"}, "Stored; Location names it")}, 413, 415, 507
            ),
        },
        "post": {
            "operationId": "postRecord",
            "summary": "Store a record (the same as PUT)",
            "parameters": [CONTENT_ENCODING],
            "requestBody": RECORD_BODY,
            "responses": responses(
                {**ok_json(201, {"type": "object"}, "Stored; Location names it")}, 413, 415, 507
            ),
        },
        "delete": {
            "operationId": "deleteRecord",
            "summary": "Delete a record",
            "responses": responses(NO_CONTENT, 507),
        },
    },
    "/v2/key-value-stores/{storeId}/shares": {
        "parameters": [STORE_ID],
        "get": {
            "operationId": "listShares",
            "summary": "Who the owner shared the store with (owner only)",
            "responses": responses(ok_json(200, ref("ShareList"), "The store's shares")),
        },
    },
    "/v2/key-value-stores/{storeId}/shares/{username}": {
        "parameters": [STORE_ID, path("username", USERNAME, "The user to share with", "someone")],
        "put": {
            "operationId": "putShare",
            "summary": "Share the store with a user for reading or writing (owner only)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("ShareAccess")}},
            },
            "responses": responses(ok_json(200, ref("Share"), "The share"), 413, 415, 507),
        },
        "delete": {
            "operationId": "deleteShare",
            "summary": "Take a share back (owner only)",
            "responses": responses(NO_CONTENT, 507),
        },
    },
    "/v2/key-value-stores/{storeId}/rotate-url-signing-secret-key": {
        "parameters": [STORE_ID],
        "post": {
            "operationId": "rotateUrlSigningSecretKey",
            "summary": (
                "Give the store a new URL signing secret key (owner only): every URL signed with the old one "
                "stops working at once"
            ),
            "responses": responses(
                ok_json(200, ref("KeyValueStore"), "The store with its new key"), 413, 507
            ),
        },
    },
    "/v2/users/me": {
        "get": {
            "operationId": "getMe",
            "summary": "The user the token belongs to",
            "responses": responses(ok_json(200, ref("Me"), "The user")),
        },
    },
    "/v2/users/{userId}": {
        "parameters": [path("userId", STRING, "A user's id or username", "someone")],
        "get": {
            "operationId": "getUser",
            "summary": "A user's public face; no token needed",
            "security": [{}, {"bearer": []}, {"token": []}],
            "responses": responses(ok_json(200, ref("PublicUser"), "The user")),
        },
    },
    "/v2/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document; no token needed",
            "security": [{}, {"bearer": []}, {"token": []}],
            "responses": responses(
                {
                    "200": {
                        "description": "The OpenAPI document",
                        "content": {"application/json": {"schema": {}}},
                    }
                }
            ),
        },
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Satchel",
        "version": "2",
        "description": (
            "The Apify API v2 key-value store contract, self-hosted. Every endpoint also takes `?method=` to "
            "override the HTTP method, and HEAD is answered wherever GET is. Successful JSON answers are "
            '`{"data": ...}`; errors are '
            '`{"error": {"type": ..., "message": ...}}`. Read access without a token depends on the store\'s '
            "`generalAccess` or a `signature`."
        ),
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}, {"token": []}, {}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <token>"},
            "token": {
                "type": "apiKey",
                "in": "query",
                "name": "token",
                "description": "The token as ?token=",
            },
        },
    },
}
BODY = orjson.dumps(DOCUMENT)


async def document(call: Call) -> Response:
    return Response(BODY, media_type="application/json")
