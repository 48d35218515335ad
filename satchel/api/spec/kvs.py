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
            {
                "userId": {**STRING, "description": "The id of the user it is shared with"},
                "username": {**STRING, "description": "The username of the user it is shared with"},
                "access": {"enum": ["READ", "WRITE"]},
                "createdAt": {**TIME, "description": "When it was shared"},
            }
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
VALIDATOR_HEADERS = {
    "ETag": {
        "schema": STRING,
        "description": (
            'The SHA-256 (hex) of the body as stored, quoted: a strong tag; `W/"..."` (weak) when a record '
            "stored with a Content-Encoding is sent decoded"
        ),
    },
    "Last-Modified": {"schema": STRING, "description": "When the record was last written (an HTTP date)"},
    "Cache-Control": {
        "schema": {"enum": ["no-cache"]},
        "description": "A kept copy is checked again (a conditional request) before each use",
    },
}
RECORD_HEADERS = {
    **{
        name: {"schema": STRING, "description": description}
        for name, description in (
            ("Content-Type", "The type the record was stored with"),
            ("Content-Encoding", "The stored encoding, when the request's Accept-Encoding admits it"),
            ("Content-Length", "The length of this response's body"),
        )
    },
    **VALIDATOR_HEADERS,
    "Accept-Ranges": {
        "schema": {"enum": ["bytes", "none"]},
        "description": "`bytes` for a record stored without Content-Encoding; `none` for a compressed one",
    },
}


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": STRING, "description": description}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


IF_MATCH = _header(
    "If-Match",
    "Go ahead only if the record exists with one of these ETags (strong comparison), or exists at all (`*`); "
    "else 412",
)
IF_NONE_MATCH_READ = _header(
    "If-None-Match",
    "304 if the record's ETag is one of these (weak comparison) or for `*`; before If-Modified-Since",
)
IF_NONE_MATCH_WRITE = _header(
    "If-None-Match",
    "`*`: 412 if the record exists (a PUT only creates); tags: 412 if the record has one of them",
)
IF_MODIFIED_SINCE = _header(
    "If-Modified-Since", "304 if the record was not written after this HTTP date (ignored with If-None-Match)"
)
RANGE = _header(
    "Range",
    "One byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`): 206 with that slice, for a record stored without "
    "Content-Encoding. A compressed record, several ranges or a header that cannot be read: 200, whole",
)
IF_RANGE = _header("If-Range", "Apply Range only if the record still has this ETag (or this Last-Modified)")
NOT_MODIFIED = {
    "304": {
        "description": "Not modified (If-None-Match, If-Modified-Since): no body",
        "headers": VALIDATOR_HEADERS,
    }
}
PRECONDITION_FAILED = {
    "412": _error("The record is not as If-Match / If-None-Match require (`precondition-failed`)")
}
STORED = responses(
    {
        **ok_json(201, {"type": "object"}, "Stored; Location names it, ETag is the new record's"),
        **PRECONDITION_FAILED,
    },
    413,
    415,
    507,
)
STORED["201"]["headers"] = {"ETag": VALIDATOR_HEADERS["ETag"]}

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
        IF_MATCH,
        IF_NONE_MATCH_READ,
        IF_MODIFIED_SINCE,
        RANGE,
        IF_RANGE,
    ],
    "responses": responses(
        {
            "200": {
                "description": "The record, with the Content-Type it was stored with",
                "headers": RECORD_HEADERS,
                "content": {"*/*": {"schema": {}}},
            },
            "206": {
                "description": "The byte range asked for",
                "headers": {
                    **RECORD_HEADERS,
                    "Content-Range": {"schema": STRING, "description": "`bytes FIRST-LAST/SIZE`"},
                },
                "content": {"*/*": {"schema": {}}},
            },
            **NOT_MODIFIED,
            **PRECONDITION_FAILED,
            "416": {
                **_error("The range starts past the end of the record (`range-not-satisfiable`)"),
                "headers": {"Content-Range": {"schema": STRING, "description": "`bytes */SIZE`"}},
            },
        }
    ),
}
HEAD_RECORD = {
    "operationId": "headRecord",
    "summary": "Whether a record exists, with the headers its GET would have",
    "parameters": [SIGNATURE, IF_MATCH, IF_NONE_MATCH_READ, IF_MODIFIED_SINCE],
    "responses": responses(
        {
            "200": {"description": "It exists", "headers": RECORD_HEADERS},
            **NOT_MODIFIED,
            **PRECONDITION_FAILED,
        }
    ),
}
PUT_RECORD = {
    "operationId": "putRecord",
    "summary": "Store a record; with If-Match or If-None-Match, only if the record is as they require",
    "parameters": [CONTENT_ENCODING, IF_MATCH, IF_NONE_MATCH_WRITE],
    "requestBody": RECORD_BODY,
    "responses": STORED,
}
POST_RECORD = {**PUT_RECORD, "operationId": "postRecord", "summary": "Store a record (the same as PUT)"}
DELETE_RECORD = {
    "operationId": "deleteRecord",
    "summary": "Delete a record; with If-Match or If-None-Match, only if the record is as they require",
    "parameters": [IF_MATCH, IF_NONE_MATCH_WRITE],
    "responses": responses({**NO_CONTENT, **PRECONDITION_FAILED}, 507),
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
