"""Store collection and store object endpoints."""

from __future__ import annotations

from starlette.responses import Response

from satchel.api import wire
from satchel.api.http import (
    DEFAULT_PAGE,
    MAX_JSON_BYTES,
    Call,
    body_chunks,
    declared_length,
    read_creation,
    read_json_object,
)
from satchel.errors import TooLarge
from satchel.service.access import Level


async def list_stores(call: Call) -> Response:
    args = call.listing()
    page = await call.services.stores.page(call.caller, args)
    return await wire.page_response(
        lambda: wire.store_page(page, call.base_url, unnamed=args.unnamed), len(page.items)
    )


async def create_store(call: Call) -> Response:
    name, body = await read_creation(call)
    row, created = await call.services.stores.get_or_create(call.caller, name, body.get("schema"))
    headers = {"location": wire.store_url(call.base_url, row.id)}
    return wire.json_response(wire.store(row, Level.OWNER, call.base_url), 201 if created else 200, headers)


async def get_store(call: Call) -> Response:
    row, level = await call.services.stores.get(call.caller, call.params["storeId"])
    return wire.json_response(wire.store(row, level, call.base_url))


async def update_store(call: Call) -> Response:
    changes = await read_json_object(call.request)
    row = await call.services.stores.update(call.caller, call.params["storeId"], changes)
    return wire.json_response(wire.store(row, Level.OWNER, call.base_url))


async def rotate_signing_key(call: Call) -> Response:
    await _discard_body(call)
    row = await call.services.stores.rotate_signing_key(call.caller, call.params["storeId"])
    return wire.json_response(wire.store(row, Level.OWNER, call.base_url))


async def delete_store(call: Call) -> Response:
    await call.services.stores.delete(call.caller, call.params["storeId"])
    return Response(status_code=204)


async def list_keys(call: Call) -> Response:
    page = await call.services.records.list_keys(
        call.caller,
        call.params["storeId"],
        exclusive_start_key=call.text("exclusiveStartKey"),
        limit=call.number("limit", DEFAULT_PAGE),
        prefix=call.text("prefix"),
        collection=call.text("collection"),
        signature=call.text("signature"),
    )
    return await wire.page_response(lambda: wire.key_page(page, call.base_url), len(page.items))


async def _discard_body(call: Call) -> None:
    """Read and drop a body sent where none is taken, up to the JSON bodies' limit.

    Left unread, a large one made the HTTP server drop the connection without a word, losing the client's next
    request on it; read, the connection carries on.
    """
    too_large = TooLarge(
        f"This endpoint takes no body; it reads at most {MAX_JSON_BYTES} bytes of one.",
        type="request-too-large",
    )
    if (declared_length(call.request) or 0) > MAX_JSON_BYTES:
        raise too_large
    size = 0
    async for chunk in body_chunks(call.request):
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise too_large
