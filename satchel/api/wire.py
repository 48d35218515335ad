"""Wire shapes: rows as the API writes them (camelCase, exactly the hosted field names)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from starlette.responses import Response

from satchel.clock import iso
from satchel.service.access import Level
from satchel.service.records import KeyPage
from satchel.service.signing import record_signature, storage_signature
from satchel.service.stores import StorePage
from satchel.storage import GrantRow, StoreRow

JSON = "application/json; charset=utf-8"
# On every body a user stored or a run printed (records, items, logs), served from Satchel's own origin, where
# the Console is: never sniffed into a page, and sandboxed should a browser render it as one anyway.
UNTRUSTED = {"x-content-type-options": "nosniff", "content-security-policy": "sandbox"}
# Pages of this many items or more are built and encoded on a worker thread rather than on the event loop.
# Measured: a page of 1,000 stores took 25 ms to build, one of 1,000 signed keys 6 ms; the loop answers
# nobody else meanwhile. (The thread still takes the GIL, but gives it back every switch interval, 5 ms, so
# other requests are answered while a page is built; the hop itself costs about 0.1 ms.)
OFF_LOOP_ITEMS = 100


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps({"data": data}), status_code=status, headers=headers, media_type=JSON)


async def page_response(build: Callable[[], Any], items: int) -> Response:
    """A page as `{"data": ...}`, built by `build`: off the event loop when it has many items."""
    if items < OFF_LOOP_ITEMS:
        return json_response(build())
    body = await asyncio.to_thread(lambda: orjson.dumps({"data": build()}))
    return Response(body, media_type=JSON)


def store_url(base_url: str, store_id: str) -> str:
    return f"{base_url}/v2/key-value-stores/{store_id}"


def record_url(base_url: str, store_id: str, key: str) -> str:
    return f"{store_url(base_url, store_id)}/records/{quote(key, safe='')}"


def store(row: StoreRow, level: Level, base_url: str, *, listed: bool = False) -> dict[str, Any]:
    """A store as the API shows it; `listed`, as an item of a store list, without its schema.

    A list of 1,000 stores must not repeat 1,000 schemas (up to 64 KiB each): an item carries only bounded
    fields, and the store's own object (`GET` of the store) carries the schema.
    """
    # The signing secret, and URLs signed with it, go only to those who may write.
    writer = level >= Level.WRITE
    url = store_url(base_url, row.id)
    signature = f"?signature={storage_signature(row.url_signing_secret_key, row.id)}" if writer else ""
    data: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "title": row.title,
        "userId": row.user_id,
        "username": row.username,
        "createdAt": iso(row.created_at),
        "modifiedAt": iso(row.modified_at),
        "accessedAt": iso(row.accessed_at),
        "actId": row.act_id,
        "actRunId": row.act_run_id,
        "consoleUrl": f"{base_url}/console/key-value-stores/{row.id}",
        "keysPublicUrl": f"{url}/keys{signature}",
        "recordsPublicUrl": f"{url}/records{signature}",
        "generalAccess": row.general_access,
        "stats": {
            "readCount": row.stats.read_count,
            "writeCount": row.stats.write_count,
            "deleteCount": row.stats.delete_count,
            "listCount": row.stats.list_count,
            "storageBytes": row.stats.storage_bytes,
            "s3StorageBytes": row.stats.storage_bytes,
        },
    }
    if row.schema is not None and not listed:
        data["schema"] = orjson.loads(row.schema)
    if writer:
        data["urlSigningSecretKey"] = row.url_signing_secret_key
    return data


def storage_page(
    page: StorePage, *, unnamed: bool, item: Callable[[StoreRow, Level], dict[str, Any]]
) -> dict[str, Any]:
    """A page of storages of any kind, each shown by `item`."""
    return {
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
        "desc": page.desc,
        "count": len(page.items),
        "unnamed": unnamed,
        "items": [item(row, level) for row, level in page.items],
    }


def store_page(page: StorePage, base_url: str, *, unnamed: bool) -> dict[str, Any]:
    return storage_page(
        page, unnamed=unnamed, item=lambda row, level: store(row, level, base_url, listed=True)
    )


def key_page(page: KeyPage, base_url: str) -> dict[str, Any]:
    row = page.store
    secret = row.url_signing_secret_key if page.level >= Level.WRITE else None
    items = []
    for item in page.items:
        url = record_url(base_url, row.id, item.key)
        if secret is not None:
            url += f"?signature={record_signature(secret, item.key)}"
        items.append({"key": item.key, "size": item.size, "recordPublicUrl": url})
    return {
        "items": items,
        "count": len(items),
        "limit": page.limit,
        "exclusiveStartKey": page.exclusive_start_key,
        "isTruncated": page.is_truncated,
        "nextExclusiveStartKey": page.next_exclusive_start_key,
    }


def grant(row: GrantRow) -> dict[str, Any]:
    return {
        "userId": row.user_id,
        "username": row.username,
        "access": row.access.upper(),
        "createdAt": iso(row.created_at),
    }
