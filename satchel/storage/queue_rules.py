"""The rules of a request queue that every engine applies inside its own transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from satchel.errors import Conflict, NotFound
from satchel.storage.rows import Columns, NewRequest, RequestAdded


def sort_added(
    requests: Sequence[NewRequest], found: Iterable[Columns]
) -> tuple[list[RequestAdded], list[NewRequest]]:
    """What an add answers for each request, and those to insert: every engine's rule, given the rows
    (id, handled_at) of those already in the queue. An id sent twice is inserted once."""
    handled = {row["id"]: row["handled_at"] is not None for row in found}
    results: list[RequestAdded] = []
    new: list[NewRequest] = []
    for request in requests:
        if request.id in handled:
            results.append(RequestAdded(request.id, True, handled[request.id]))
        else:
            handled[request.id] = request.handled_at is not None
            new.append(request)
            results.append(RequestAdded(request.id, False, False))
    return results, new


def check_held(row: Columns | None, client_key: str, now: int) -> None:
    """Refuse to touch a request's lock (from its handled_at, lock_expires_at and lock_client) that is not
    there or is someone else's; every engine asks this inside the transaction that changes the lock."""
    if row is None:
        raise NotFound("Request was not found.")
    if row["handled_at"] is not None:
        raise Conflict("The request is handled; it cannot be locked.", type="request-handled")
    if row["lock_expires_at"] is None or row["lock_expires_at"] <= now:
        raise Conflict("The request is not locked.", type="request-not-locked")
    if row["lock_client"] != client_key:
        raise Conflict("The request is locked by another client.", type="request-locked-by-another-client")
