"""Errors as the API writes them: a status and `{"error": {"type", "message"}}`."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from satchel.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    SatchelError,
    StorageFull,
    TooLarge,
    Unauthorized,
    UnsupportedEncoding,
)

STATUS: dict[type[SatchelError], int] = {
    InvalidRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    TooLarge: 413,
    UnsupportedEncoding: 415,
    RateLimited: 429,
    StorageFull: 507,
}


def status_of(error: SatchelError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(status: int, type: str, message: str, *, head: bool = False) -> Response:
    body = b"" if head else orjson.dumps({"error": {"type": type, "message": message}})
    response = Response(body, status_code=status, media_type="application/json; charset=utf-8")
    if head:
        del response.headers["content-length"]
    return response


def from_error(error: SatchelError, *, head: bool = False) -> Response:
    response = error_response(status_of(error), error.type, error.message, head=head)
    if isinstance(error, MethodNotAllowed):
        response.headers["allow"] = ", ".join(error.allowed)
    return response
