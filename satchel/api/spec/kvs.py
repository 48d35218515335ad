"""OpenAPI schemas and operations of the key-value store endpoints (routing.ROUTES names them per method)."""

from __future__ import annotations

from typing import Any

from satchel.api.spec.common import (
    BOOLEAN,
    FLAG,
    INTEGER,
    KEY,
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
from satchel.service.validation import MAX_JSON_DEPTH, MAX_SCHEMA_BYTES, MAX_TITLE

NAME: Schema = {"type": "string", "pattern": "^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"}
TITLE: Schema = {"type": "string", "maxLength": MAX_TITLE, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}

register(
    {
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
        "ShareList": obj(
            {"total": INTEGER, "count": INTEGER, "items": {"type": "array", "items": ref("Share")}}
        ),
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
)

SIGNATURE = query("signature", STRING, "A signature from a public URL; grants reading without a token")
PREFIX = query("prefix", STRING, "Only keys that start with this")
COLLECTION = query("collection", STRING, "Only keys of this collection of the store's schema")
PAGE_LIMIT = query("limit", LIMIT, "At most this many (clamped to 1000; 0 means 1000)")
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
STORED = responses({**ok_json(201, {"type": "object"}, "Stored; Location names it")}, 413, 415, 507)

# /v2/key-value-stores
LIST_STORES, GET_STORE, UPDATE_STORE, DELETE_STORE = storage_operations(
    "store", "stores", "KeyValueStore", "KeyValueStore", "records"
)
GET_OR_CREATE_STORE = {
    "operationId": "getOrCreateKeyValueStore",
    "summary": "The caller's store of this name, created if there is none",
    "parameters": [
        {**query("name", NAME, "The store's name; none creates an unnamed store"), "example": "my-store"}
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
}

# /v2/key-value-stores/{storeId}

# /v2/key-value-stores/{storeId}/keys and /records
LIST_KEYS = {
    "operationId": "listKeys",
    "summary": "A page of keys in UTF-8 binary order",
    "parameters": [
        query("exclusiveStartKey", STRING, "Start after this key"),
        PAGE_LIMIT,
        PREFIX,
        COLLECTION,
        SIGNATURE,
    ],
    "responses": responses(ok_json(200, ref("KeyPage"), "A page of keys")),
}
DOWNLOAD_RECORDS = {
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
}

# /v2/key-value-stores/{storeId}/records/{recordKey}
GET_RECORD = {
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
}
HEAD_RECORD = {
    "operationId": "headRecord",
    "summary": "Whether a record exists, with the headers its GET would have",
    "parameters": [SIGNATURE],
    "responses": responses({"200": {"description": "It exists", "headers": RECORD_HEADERS}}),
}
PUT_RECORD = {
    "operationId": "putRecord",
    "summary": "Store a record",
    "parameters": [CONTENT_ENCODING],
    "requestBody": RECORD_BODY,
    "responses": STORED,
}
POST_RECORD = {**PUT_RECORD, "operationId": "postRecord", "summary": "Store a record (the same as PUT)"}
DELETE_RECORD = {
    "operationId": "deleteRecord",
    "summary": "Delete a record",
    "responses": responses(NO_CONTENT, 507),
}


# /v2/key-value-stores/{storeId}/shares and /shares/{username}
def share_operations(noun: str, prefix: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The sharing operations of one storage kind: list, put, delete (ids `list{prefix}Shares`...)."""
    return (
        {
            "operationId": f"list{prefix}Shares",
            "summary": f"Who the owner shared the {noun} with (owner only)",
            "responses": responses(ok_json(200, ref("ShareList"), f"The {noun}'s shares")),
        },
        {
            "operationId": f"put{prefix}Share",
            "summary": f"Share the {noun} with a user for reading or writing (owner only)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("ShareAccess")}},
            },
            "responses": responses(ok_json(200, ref("Share"), "The share"), 413, 415, 507),
        },
        {
            "operationId": f"delete{prefix}Share",
            "summary": "Take a share back (owner only)",
            "responses": responses(NO_CONTENT, 507),
        },
    )


LIST_SHARES, PUT_SHARE, DELETE_SHARE = share_operations("store", "")

# /v2/key-value-stores/{storeId}/rotate-url-signing-secret-key
ROTATE_SIGNING_KEY = {
    "operationId": "rotateUrlSigningSecretKey",
    "summary": (
        "Give the store a new URL signing secret key (owner only): every URL signed with the old one "
        "stops working at once"
    ),
    "responses": responses(ok_json(200, ref("KeyValueStore"), "The store with its new key"), 413, 507),
}
