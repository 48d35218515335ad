"""Errors as the API writes them: a status and `{"error": {"type", "message"}}`, with `data` for the errors
that carry details (items that fail their dataset's schema)."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from satchel.errors import MethodNotAllowed, SatchelError


def error_response(
    status: int, type: str, message: str, *, head: bool = False, data: dict[str, object] | None = None
) -> Response:
    error: dict[str, object] = {"type": type, "message": message}
    if data is not None:
        error["data"] = data
    body = b"" if head else orjson.dumps({"error": error})
    response = Response(body, status_code=status, media_type="application/json; charset=utf-8")
    if head:
        del response.headers["content-length"]
    return response


def from_error(error: SatchelError, *, head: bool = False) -> Response:
    response = error_response(error.status, error.type, error.message, head=head, data=error.data)
    if isinstance(error, MethodNotAllowed):
        response.headers["allow"] = ", ".join(error.allowed)
    if error.retry_after is not None:
        response.headers["retry-after"] = str(error.retry_after)
    return response
