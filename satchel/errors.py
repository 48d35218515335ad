"""The errors Satchel's rules raise.

Each carries the API's error `type` and the HTTP status it answers with.

The types are the hosted API's own strings, which the official clients know by name.
"""

from __future__ import annotations


class SatchelError(Exception):
    """Base of every error that reaches a caller with a type and a message."""

    type = "internal-server-error"
    status = 500
    data: dict[str, object] | None = None  # the envelope's `error.data`, for errors that carry details
    retry_after: int | None = None  # seconds after which the same request may succeed: sent as Retry-After

    def __init__(self, message: str, type: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if type is not None:
            self.type = type
        if retry_after is not None:
            self.retry_after = retry_after


class InvalidRequest(SatchelError):
    """The request is malformed: a bad parameter, body or header."""

    type = "invalid-request"
    status = 400


class SchemaInvalid(InvalidRequest):
    """Items that do not match their dataset's schema: which ones and why, in `data`."""

    type = "schema-validation-error"

    def __init__(self, message: str, data: dict[str, object]) -> None:
        super().__init__(message)
        self.data = data


class BodyTimeout(InvalidRequest):
    """The client stopped sending the request's body (an InvalidRequest: whatever reads a body handles it)."""

    type = "request-timeout"
    status = 408


class Unauthorized(SatchelError):
    type = "token-not-provided"
    status = 401


class Forbidden(SatchelError):
    type = "insufficient-permissions"
    status = 403


class NotFound(SatchelError):
    # The JavaScript client reads a 404 as "absent" only with this type, so every 404 carries it.
    type = "record-not-found"
    status = 404


class MethodNotAllowed(SatchelError):
    type = "method-not-allowed"
    status = 405

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(
            "This API endpoint can only be accessed using the following HTTP methods: " + ", ".join(allowed)
        )
        self.allowed = allowed

    def __reduce__(self) -> tuple[object, tuple[tuple[str, ...]]]:
        # Rebuilt from what it was made of (an exception's default is its message), so that it pickles.
        return (MethodNotAllowed, (self.allowed,))


class Conflict(SatchelError):
    type = "name-not-unique"
    status = 409


class TooLarge(SatchelError):
    type = "record-too-large"
    status = 413


class UnsupportedEncoding(SatchelError):
    type = "unsupported-content-encoding"
    status = 415


class UnsupportedTransferCoding(InvalidRequest):
    """A body sent in a transfer coding the server does not undo (HTTP/1.1 allows 501; bad input here is a
    4xx, as the HTTP server's own answer to `chunked, gzip` is)."""

    type = "unsupported-transfer-encoding"


class StorageFull(SatchelError):
    """The disk under the data dir is full; reads still work and writes resume once space is freed."""

    type = "storage-full"
    status = 507


class RateLimited(SatchelError):
    type = "rate-limit-exceeded"
    status = 429
    retry_after = 1  # the per-second limits' next window


class Unavailable(SatchelError):
    """A backend (the database or the object store) does not answer; nothing was changed, retry later."""

    type = "service-unavailable"
    status = 503
    retry_after = 1
