"""The OpenAPI 3.1 document, served at `GET /v2/openapi.json`, built from the route table.

Each route of routing.ROUTES gives one path item: its template's path parameters (from common.PATH_PARAMS, by
name) and one operation per method, the spec its Endpoint carries. Nothing is listed twice, so the document
cannot name a route the server does not serve, or miss one it does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from satchel.api.http import Call
from satchel.api.spec import kvs, users
from satchel.api.spec.common import ANYONE, ERROR_RESPONSES, PATH_PARAMS, SCHEMAS, responses

if TYPE_CHECKING:
    from satchel.api.routing import Route

# Each resource module adds its schemas to SCHEMAS when imported; naming them here makes sure they are.
RESOURCES = (kvs, users)

GET_OPENAPI = {
    "operationId": "getOpenApi",
    "summary": "This document; no token needed",
    "security": ANYONE,
    "responses": responses(
        {"200": {"description": "The OpenAPI document", "content": {"application/json": {"schema": {}}}}}
    ),
}
INFO = {
    "title": "Satchel",
    "version": "2",
    "description": (
        "The Apify API v2 key-value store contract, self-hosted. Every endpoint also takes `?method=` to "
        "override the HTTP method, and HEAD is answered wherever GET is. Successful JSON answers are "
        '`{"data": ...}`; errors are '
        '`{"error": {"type": ..., "message": ...}}`. Read access without a token depends on the store\'s '
        "`generalAccess` or a `signature`."
    ),
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <token>"},
    "token": {"type": "apiKey", "in": "query", "name": "token", "description": "The token as ?token="},
}


# Each operation's tag, from the first segment of its path: the docs page shows one folded group per tag, so
# it opens on a short list rather than all of the 191 operations at once.
TAGS = {
    "key-value-stores": "Key-value stores",
    "datasets": "Datasets",
    "request-queues": "Request queues",
    "actor-runs": "Runs",
    "logs": "Runs",
    "acts": "Actors",
    "actors": "Actors",
    "users": "Users",
    "openapi.json": "This document",
}


def path_item(route: Route) -> dict[str, Any]:
    """One route as an OpenAPI path item: its path parameters, then an operation per method."""
    item: dict[str, Any] = {}
    if route.params:
        item["parameters"] = [PATH_PARAMS[name] for name in route.params]
    tags = [TAGS[route.template.split("/")[2]]]
    for method, endpoint in route.methods.items():
        item[method.lower()] = {"tags": tags, **endpoint.spec}
    return item


def build_document(routes: Iterable[Route]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"token": []}, {}],
        "tags": [{"name": name} for name in dict.fromkeys(TAGS.values())],
        "paths": {route.template: path_item(route) for route in routes},
        "components": {
            "schemas": SCHEMAS,
            "responses": ERROR_RESPONSES,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@functools.cache
def body() -> bytes:
    """The document as served, made on first use: the route table names this module's handler, so it cannot
    be imported while this module loads."""
    from satchel.api.routing import ROUTES  # noqa: PLC0415 - routing imports this module

    return orjson.dumps(build_document(ROUTES))


async def document(call: Call) -> Response:
    return Response(body(), media_type="application/json")
