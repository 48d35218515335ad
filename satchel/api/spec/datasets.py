"""OpenAPI schemas and operations of the dataset endpoints (routing.ROUTES names them per method)."""

from __future__ import annotations

from typing import Any

from satchel.api.spec.common import (
    BOOLEAN,
    FLAG,
    INTEGER,
    LIMIT,
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
from satchel.api.spec.kvs import NAME
from satchel.service.access import GENERAL_ACCESS
from satchel.service.item_formats import MEDIA_TYPES, Format

DATASET_FIELDS: dict[str, Schema] = {
    "id": STRING,
    "name": nullable(STRING),
    "title": nullable(STRING),
    "userId": STRING,
    "username": STRING,
    "createdAt": TIME,
    "modifiedAt": TIME,
    "accessedAt": TIME,
    "itemCount": INTEGER,
    "cleanItemCount": INTEGER,
    "actId": nullable(STRING),
    "actRunId": nullable(STRING),
    "consoleUrl": URL,
    "itemsPublicUrl": URL,
    "generalAccess": {"enum": list(GENERAL_ACCESS)},
    "stats": ref("DatasetStats"),
    "schema": {"type": "object", "description": "The dataset's schema, when it was created with one"},
    "urlSigningSecretKey": {**STRING, "description": "Only for callers who may write"},
}
register(
    {
        "DatasetStats": obj({"readCount": INTEGER, "writeCount": INTEGER, "storageBytes": INTEGER}),
        "Dataset": obj(DATASET_FIELDS, optional=("schema", "urlSigningSecretKey")),
        "DatasetListItem": obj(
            {
                **{k: v for k, v in DATASET_FIELDS.items() if k != "schema"},
                "name": {**STRING, "description": "Empty for an unnamed dataset (listed with unnamed=true)"},
            },
            optional=("urlSigningSecretKey",),
        ),
        "DatasetList": obj(
            {
                "total": INTEGER,
                "offset": INTEGER,
                "limit": {"type": "integer", "minimum": 1},
                "desc": BOOLEAN,
                "count": INTEGER,
                "unnamed": BOOLEAN,
                "items": {"type": "array", "items": ref("DatasetListItem")},
            }
        ),
        "DatasetStatistics": obj({"fieldStatistics": {"type": "null", "description": "Not computed"}}),
    }
)

LIST_NAMES = {"type": "string", "description": "Comma-separated field names"}
PAGINATION_HEADERS = {
    f"X-Apify-Pagination-{name}": {"schema": schema, "description": description}
    for name, schema, description in (
        ("Offset", INTEGER, "The offset used"),
        ("Limit", INTEGER, "The limit used; 999999999999 when there was none"),
        ("Count", INTEGER, "Rows read for this page, before filters and unwind"),
        ("Total", INTEGER, "Items in the dataset"),
        ("Desc", {"enum": ["true", "false"]}, "Whether newest came first"),
    )
}
ITEM_CONTENT: dict[str, Any] = {
    MEDIA_TYPES[Format.JSON].split(";")[0]: {"schema": {"type": "array", "items": {"type": "object"}}},
    **{
        MEDIA_TYPES[f].split(";")[0]: {"schema": {"type": "string"}}
        for f in (Format.JSONL, Format.CSV, Format.HTML, Format.XML, Format.RSS)
    },
    MEDIA_TYPES[Format.XLSX]: {"schema": {"type": "string", "format": "binary"}},
}

# /v2/datasets
LIST_DATASETS, GET_DATASET, UPDATE_DATASET, DELETE_DATASET = storage_operations(
    "dataset", "datasets", "Dataset", "Dataset", "items"
)
GET_OR_CREATE_DATASET = {
    "operationId": "getOrCreateDataset",
    "summary": "The caller's dataset of this name, created if there is none",
    "description": (
        "A new dataset's `schema` may hold `fields`, a JSON Schema (draft-07) of one item: every push is then"
        " checked against it, and one with an item that fails is refused whole (400"
        " `schema-validation-error`). A `fields` that cannot check items is refused here (400"
        " `invalid-value`)."
    ),
    "parameters": [
        {**query("name", NAME, "The dataset's name; none creates an unnamed one"), "example": "my-dataset"}
    ],
    "requestBody": {"required": False, "content": {"application/json": {"schema": ref("NewStore")}}},
    "responses": responses(
        {**ok_json(201, ref("Dataset"), "Created"), **ok_json(200, ref("Dataset"), "It already existed")},
        413,
        415,
        507,
    ),
}

# /v2/datasets/{datasetId}

# /v2/datasets/{datasetId}/items
GET_ITEMS = {
    "operationId": "getDatasetItems",
    "summary": "Items, streamed in the chosen format",
    "parameters": [
        query("format", {"enum": [str(f) for f in Format]}, "The output format (json by default)"),
        query("offset", LIMIT, "Rows to skip"),
        query("limit", LIMIT, "At most this many rows; none or 0: all (999999999999 and above too)"),
        query("desc", FLAG, "Newest first (unwound items keep their order)"),
        query("fields", LIST_NAMES, "Keep only these fields, in this order"),
        query("omit", LIST_NAMES, "Leave these fields out"),
        query("unwind", LIST_NAMES, "Fields whose arrays give one item per element, objects merged"),
        query("flatten", LIST_NAMES, "Fields whose nested values become dotted fields"),
        query("clean", FLAG, "skipHidden and skipEmpty"),
        query("skipHidden", FLAG, "Leave out top-level fields that start with #"),
        query("skipEmpty", FLAG, "Leave out empty items"),
        query("skipFailedPages", FLAG, "Leave out items with an errorInfo"),
        query("simplified", FLAG, "fields=url,pageFunctionResult,errorInfo&unwind=pageFunctionResult"),
        query("view", STRING, "A view of the dataset's schema: its fields, omit, unwind and flatten"),
        query("attachment", FLAG, "Answer with Content-Disposition: attachment"),
        query("bom", FLAG, "Start with a UTF-8 byte order mark (by default only CSV does)"),
        query("delimiter", {"type": "string", "minLength": 1, "maxLength": 1}, "CSV delimiter"),
        query("skipHeaderRow", FLAG, "CSV without its header row"),
        query("xmlRoot", STRING, "XML root element (items)"),
        query("xmlRow", STRING, "XML and RSS element of each item (item)"),
        query("signature", STRING, "A signature from itemsPublicUrl; grants reading without a token"),
    ],
    "responses": responses(
        {"200": {"description": "The items", "headers": PAGINATION_HEADERS, "content": ITEM_CONTENT}}
    ),
}
PUSH_ITEMS = {
    "operationId": "pushDatasetItems",
    "summary": "Append one object or an array of objects (gzip, deflate or br bodies too)",
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}
            }
        },
    },
    "responses": responses(
        {
            "201": {
                "description": "Appended; Location names the items",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
        413,
        415,
        507,
    ),
}

# /v2/datasets/{datasetId}/statistics
GET_STATISTICS = {
    "operationId": "getDatasetStatistics",
    "summary": "Field statistics (not computed: always null)",
    "responses": responses(ok_json(200, ref("DatasetStatistics"), "The statistics")),
}
