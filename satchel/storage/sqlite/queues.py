"""Request queues' requests in SQLite.

Every change runs in the single writer's transaction, so changes of one queue (and of all queues) happen one
at a time: a head lock reads and locks its requests with no other writer in between, which is what keeps two
callers from getting one request. Several processes on one file take SQLite's write lock (BEGIN IMMEDIATE)
for the same effect. Reads run on the calling thread and see every committed change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from satchel.errors import NotFound
from satchel.storage.queue_rules import check_held, sort_added
from satchel.storage.rows import (
    REQUEST_COLUMNS,
    LockedHead,
    NewRequest,
    QueueState,
    RequestAdded,
    RequestRow,
    StorageKind,
)
from satchel.storage.sqlite.db import Database, rows_within

STATE_COLUMNS = "store_pk, total_count, handled_count, queue_modified_at, had_multiple_clients, client_key"
# A client other than the first one seen, or any call without a key once there was a call, makes the queue
# "had multiple clients". SET expressions read the row as it was before the UPDATE.
NOTE_CLIENT = (
    "UPDATE request_queues SET had_multiple_clients = had_multiple_clients OR (client_key IS NOT NULL"
    " AND (client_key = '' OR :key = '' OR client_key <> :key)), client_key = coalesce(client_key, :key)"
    " WHERE store_pk = :pk"
)
# Reserves n consecutive order numbers, at least now x 1000; the first is last_order - n + 1.
RESERVE = (
    "UPDATE request_queues SET last_order = max(last_order + 1, :now * 1000) + :n - 1 WHERE store_pk = :pk"
    " RETURNING last_order"
)
HEAD_WHERE = "store_pk = ? AND handled_at IS NULL AND (lock_expires_at IS NULL OR lock_expires_at <= ?)"
ORDER_SCALE = 1000  # order numbers per millisecond


def _open(conn: sqlite3.Connection, pk: int, client_key: str) -> None:
    """The queue's row, made on first use, with the client counted; NotFound if the queue is gone."""
    kind = conn.execute("SELECT kind FROM stores WHERE pk = ?", (pk,)).fetchone()
    if kind is None or kind[0] != StorageKind.REQUEST_QUEUE:
        raise NotFound("Request queue was not found.")
    conn.execute("INSERT OR IGNORE INTO request_queues (store_pk) VALUES (?)", (pk,))
    conn.execute(NOTE_CLIENT, {"pk": pk, "key": client_key})


def _reserve(conn: sqlite3.Connection, pk: int, n: int, now: int) -> int:
    last: int = conn.execute(RESERVE, {"pk": pk, "n": n, "now": now}).fetchone()[0]
    return last - n + 1


def _changed(conn: sqlite3.Connection, pk: int, now: int, *, total: int = 0, handled: int = 0) -> None:
    conn.execute(
        "UPDATE request_queues SET total_count = total_count + ?, handled_count = handled_count + ?,"
        " queue_modified_at = ? WHERE store_pk = ?",
        (total, handled, now, pk),
    )


def _store_written(
    conn: sqlite3.Connection, pk: int, now: int, *, writes: int, deletes: int, grown: int
) -> None:
    conn.execute(
        "UPDATE stores SET write_count = write_count + ?, delete_count = delete_count + ?,"
        " storage_bytes = storage_bytes + ?, modified_at = ?, accessed_at = max(accessed_at, ?) WHERE pk = ?",
        (writes, deletes, grown, now, now, pk),
    )


def _state(conn: sqlite3.Connection, pk: int) -> QueueState:
    row = conn.execute(f"SELECT {STATE_COLUMNS} FROM request_queues WHERE store_pk = ?", (pk,)).fetchone()  # noqa: S608
    return QueueState.from_row(row) if row else QueueState()


def _held(conn: sqlite3.Connection, pk: int, request_id: str, client_key: str, now: int) -> None:
    """Refuse to touch a lock that is not there or is someone else's."""
    row = conn.execute(
        "SELECT handled_at, lock_expires_at, lock_client FROM requests WHERE store_pk = ? AND id = ?",
        (pk, request_id),
    ).fetchone()
    check_held(row, client_key, now)


def _note_client(conn: sqlite3.Connection, store_pk: int, client_key: str) -> QueueState:
    _open(conn, store_pk, client_key)
    return _state(conn, store_pk)


def _add_requests(  # noqa: PLR0917 - Database.write passes a job's arguments by position
    conn: sqlite3.Connection,
    store_pk: int,
    requests: Sequence[NewRequest],
    forefront: bool,
    client_key: str,
    now: int,
) -> list[RequestAdded]:
    _open(conn, store_pk, client_key)
    ids = list({r.id for r in requests})
    marks = ",".join("?" * len(ids))
    found = conn.execute(
        f"SELECT id, handled_at FROM requests WHERE store_pk = ? AND id IN ({marks})",  # noqa: S608
        (store_pk, *ids),
    ).fetchall()
    results, new = sort_added(requests, found)
    if new:
        first = _reserve(conn, store_pk, len(new), now)
        sign = -1 if forefront else 1
        conn.executemany(
            "INSERT INTO requests (store_pk, id, order_no, handled_at, body) VALUES (?, ?, ?, ?, ?)",
            [(store_pk, r.id, sign * (first + i), r.handled_at, r.body) for i, r in enumerate(new)],
        )
        done = sum(r.handled_at is not None for r in new)
        _changed(conn, store_pk, now, total=len(new), handled=done)
        grown = sum(len(r.body) for r in new)
        _store_written(conn, store_pk, now, writes=len(new), deletes=0, grown=grown)
    return results


def _put_request(  # noqa: PLR0917 - Database.write passes a job's arguments by position
    conn: sqlite3.Connection, store_pk: int, request: NewRequest, forefront: bool, client_key: str, now: int
) -> RequestAdded:
    _open(conn, store_pk, client_key)
    old = conn.execute(
        "SELECT handled_at, length(body) AS size FROM requests WHERE store_pk = ? AND id = ?",
        (store_pk, request.id),
    ).fetchone()
    order = _reserve(conn, store_pk, 1, now) * (-1 if forefront else 1)
    was_handled = old is not None and old["handled_at"] is not None
    is_handled = request.handled_at is not None
    conn.execute(
        "INSERT INTO requests (store_pk, id, order_no, handled_at, body) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (store_pk, id) DO UPDATE SET order_no = excluded.order_no,"
        " handled_at = excluded.handled_at, body = excluded.body, lock_expires_at = NULL,"
        " lock_client = NULL",
        (store_pk, request.id, order, request.handled_at, request.body),
    )
    _changed(conn, store_pk, now, total=old is None, handled=is_handled - was_handled)
    grown = len(request.body) - (old["size"] if old else 0)
    _store_written(conn, store_pk, now, writes=1, deletes=0, grown=grown)
    return RequestAdded(request.id, old is not None, was_handled)


def _delete_requests(
    conn: sqlite3.Connection, store_pk: int, ids: Sequence[str], client_key: str, now: int
) -> list[str]:
    _open(conn, store_pk, client_key)
    marks = ",".join("?" * len(ids))
    gone = conn.execute(
        f"DELETE FROM requests WHERE store_pk = ? AND id IN ({marks})"  # noqa: S608
        " RETURNING id, handled_at, length(body) AS size",
        (store_pk, *ids),
    ).fetchall()
    if gone:
        done = sum(row["handled_at"] is not None for row in gone)
        _changed(conn, store_pk, now, total=-len(gone), handled=-done)
        size = sum(row["size"] for row in gone)
        _store_written(conn, store_pk, now, writes=0, deletes=len(gone), grown=-size)
    return [row["id"] for row in gone]


def _within(cursor: sqlite3.Cursor, max_bytes: int) -> list[RequestRow]:
    """The cursor's requests until the bodies before the next one reach max_bytes; the rest is never read."""
    return [RequestRow.from_row(row) for row in rows_within(cursor, max_bytes)[0]]


def _lock_head(  # noqa: PLR0917 - Database.write passes a job's arguments by position
    conn: sqlite3.Connection,
    store_pk: int,
    limit: int,
    max_bytes: int,
    expires: int,
    client_key: str,
    now: int,
) -> LockedHead:
    _open(conn, store_pk, client_key)
    items = _within(
        conn.execute(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE {HEAD_WHERE}"  # noqa: S608
            " ORDER BY order_no, id LIMIT ?",
            (store_pk, now, limit),
        ),
        max_bytes,
    )
    if items:
        conn.executemany(
            "UPDATE requests SET lock_expires_at = ?, lock_client = ?, order_no = ?"
            " WHERE store_pk = ? AND id = ?",
            [(expires, client_key, expires * ORDER_SCALE, store_pk, r.id) for r in items],
        )
        _changed(conn, store_pk, now)
        for item in items:
            item.lock_expires_at, item.lock_client = expires, client_key
    has_locked = conn.execute(
        "SELECT 1 FROM requests WHERE store_pk = ? AND lock_expires_at > ? AND handled_at IS NULL LIMIT 1",
        (store_pk, now),
    ).fetchone()
    return LockedHead(items, _state(conn, store_pk), has_locked is not None)


def _prolong_lock(  # noqa: PLR0917 - Database.write passes a job's arguments by position
    conn: sqlite3.Connection,
    store_pk: int,
    request_id: str,
    expires: int,
    client_key: str,
    forefront: bool,
    now: int,
) -> int:
    _open(conn, store_pk, client_key)
    _held(conn, store_pk, request_id, client_key, now)
    conn.execute(
        "UPDATE requests SET lock_expires_at = ?, order_no = ? WHERE store_pk = ? AND id = ?",
        (expires, expires * ORDER_SCALE * (-1 if forefront else 1), store_pk, request_id),
    )
    _changed(conn, store_pk, now)
    return expires


def _release_lock(  # noqa: PLR0917 - Database.write passes a job's arguments by position
    conn: sqlite3.Connection, store_pk: int, request_id: str, client_key: str, forefront: bool, now: int
) -> None:
    _open(conn, store_pk, client_key)
    _held(conn, store_pk, request_id, client_key, now)
    order = _reserve(conn, store_pk, 1, now) * (-1 if forefront else 1)
    conn.execute(
        "UPDATE requests SET lock_expires_at = NULL, lock_client = NULL, order_no = ?"
        " WHERE store_pk = ? AND id = ?",
        (order, store_pk, request_id),
    )
    _changed(conn, store_pk, now)


def _unlock_client(conn: sqlite3.Connection, store_pk: int, client_key: str, now: int) -> int:
    _open(conn, store_pk, client_key)
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM requests WHERE store_pk = ? AND lock_expires_at > ?"
            " AND handled_at IS NULL AND lock_client = ? ORDER BY order_no, id",
            (store_pk, now, client_key),
        )
    ]
    if ids:
        first = _reserve(conn, store_pk, len(ids), now)
        conn.executemany(
            "UPDATE requests SET lock_expires_at = NULL, lock_client = NULL, order_no = ?"
            " WHERE store_pk = ? AND id = ?",
            [(first + i, store_pk, request_id) for i, request_id in enumerate(ids)],
        )
        _changed(conn, store_pk, now)
    return len(ids)


class SqliteQueues:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def states(self, store_pks: Sequence[int]) -> dict[int, QueueState]:
        if not store_pks:
            return {}
        marks = ",".join("?" * len(store_pks))
        rows = self.db.all(
            f"SELECT {STATE_COLUMNS} FROM request_queues WHERE store_pk IN ({marks})",  # noqa: S608
            tuple(store_pks),
        )
        return {row["store_pk"]: QueueState.from_row(row) for row in rows}

    async def note_client(self, store_pk: int, client_key: str) -> QueueState:
        return await self.db.write(_note_client, store_pk, client_key)

    async def add(
        self, store_pk: int, requests: Sequence[NewRequest], *, forefront: bool, client_key: str, now: int
    ) -> list[RequestAdded]:
        return await self.db.write(_add_requests, store_pk, requests, forefront, client_key, now, grows=True)

    async def put(
        self, store_pk: int, request: NewRequest, *, forefront: bool, client_key: str, now: int
    ) -> RequestAdded:
        return await self.db.write(_put_request, store_pk, request, forefront, client_key, now, grows=True)

    async def get(self, store_pk: int, request_id: str) -> RequestRow | None:
        row = self.db.one(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE store_pk = ? AND id = ?",  # noqa: S608
            (store_pk, request_id),
        )
        return RequestRow.from_row(row) if row else None

    async def delete(self, store_pk: int, ids: Sequence[str], *, client_key: str, now: int) -> list[str]:
        return await self.db.write(_delete_requests, store_pk, ids, client_key, now, frees=True)

    async def page(
        self,
        store_pk: int,
        *,
        after: str | None,
        limit: int,
        max_bytes: int,
        pending: bool,
        locked: bool,
        now: int,
    ) -> list[RequestRow]:
        where = "store_pk = :pk AND id > :after"
        if pending:  # pending covers locked: a locked request is pending
            where += " AND handled_at IS NULL"
        elif locked:
            where += " AND handled_at IS NULL AND lock_expires_at > :now"
        cursor = self.db.conn.execute(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE {where} ORDER BY id LIMIT :limit",  # noqa: S608
            {"pk": store_pk, "after": after or "", "now": now, "limit": limit},
        )
        return _within(cursor, max_bytes)

    async def head(self, store_pk: int, *, limit: int, max_bytes: int, now: int) -> list[RequestRow]:
        cursor = self.db.conn.execute(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE {HEAD_WHERE}"  # noqa: S608
            " ORDER BY order_no, id LIMIT ?",
            (store_pk, now, limit),
        )
        return _within(cursor, max_bytes)

    async def lock_head(
        self, store_pk: int, *, limit: int, max_bytes: int, lock_ms: int, client_key: str, now: int
    ) -> LockedHead:
        return await self.db.write(_lock_head, store_pk, limit, max_bytes, now + lock_ms, client_key, now)

    async def prolong(
        self, store_pk: int, request_id: str, *, lock_ms: int, client_key: str, forefront: bool, now: int
    ) -> int:
        return await self.db.write(
            _prolong_lock, store_pk, request_id, now + lock_ms, client_key, forefront, now
        )

    async def release(
        self, store_pk: int, request_id: str, *, client_key: str, forefront: bool, now: int
    ) -> None:
        await self.db.write(_release_lock, store_pk, request_id, client_key, forefront, now)

    async def unlock(self, store_pk: int, *, client_key: str, now: int) -> int:
        return await self.db.write(_unlock_client, store_pk, client_key, now)
