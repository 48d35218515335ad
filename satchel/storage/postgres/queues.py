"""Request queues' requests in PostgreSQL.

Every change is one transaction that first takes a share lock on the store's row (a delete of the queue waits
for it, and it for the delete) and then the queue's own row (the UPDATE that counts the client), so changes of
one queue run one at a time on every node: a head lock reads and locks its requests with no other change of
the queue in between, and two callers never get one request. Locks are columns of the requests, so they hold
for every node and expire by time alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from satchel.errors import NotFound
from satchel.storage.postgres.db import Connection, Database, holds_nul, within_bytes
from satchel.storage.postgres.keys import NUL
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

STATE_COLUMNS = "store_pk, total_count, handled_count, queue_modified_at, had_multiple_clients, client_key"
# A client other than the first one seen, or any call without a key once there was a call, makes the queue
# "had multiple clients". SET expressions read the row as it was before the UPDATE.
NOTE_CLIENT = f"""
UPDATE request_queues SET had_multiple_clients = had_multiple_clients OR (client_key IS NOT NULL
    AND (client_key = '' OR $2 = '' OR client_key <> $2)), client_key = coalesce(client_key, $2)
WHERE store_pk = $1 RETURNING {STATE_COLUMNS}
"""  # noqa: S608
# Reserves n consecutive order numbers, at least now x 1000; the first is last_order - n + 1.
RESERVE = """
UPDATE request_queues SET last_order = greatest(last_order + 1, $3::bigint * 1000) + $2 - 1
WHERE store_pk = $1 RETURNING last_order
"""
CHANGED = """
UPDATE request_queues SET total_count = total_count + $2, handled_count = handled_count + $3,
    queue_modified_at = $4
WHERE store_pk = $1 RETURNING {STATE_COLUMNS}
""".replace("{STATE_COLUMNS}", STATE_COLUMNS)
STORE_WRITTEN = """
UPDATE stores SET write_count = write_count + $2, delete_count = delete_count + $3,
    storage_bytes = storage_bytes + $4, modified_at = $5, accessed_at = greatest(accessed_at, $5)
WHERE pk = $1
"""
HEAD_WHERE = "store_pk = $1 AND handled_at IS NULL AND (lock_expires_at IS NULL OR lock_expires_at <= $2)"
ORDER_SCALE = 1000  # order numbers per millisecond


HEAD_ORDER = "order_no, id"
HEAD = within_bytes(
    f"SELECT {REQUEST_COLUMNS}, order_no FROM requests WHERE {HEAD_WHERE} ORDER BY {HEAD_ORDER} LIMIT $3",  # noqa: S608
    HEAD_ORDER,
    "$4",
)
PICKED = within_bytes(
    f"SELECT id, order_no, body FROM requests WHERE {HEAD_WHERE} ORDER BY {HEAD_ORDER} LIMIT $6",  # noqa: S608
    HEAD_ORDER,
    "$7",
)
# The head's first requests, locked and moved to the place of their lock's expiry; returned in head order.
LOCK_HEAD = f"""
WITH picked AS (
    SELECT id, order_no FROM ({PICKED}) p
), locked AS (
    UPDATE requests r SET lock_expires_at = $3, lock_client = $4, order_no = $5
    FROM picked p WHERE r.store_pk = $1 AND r.id = p.id
    RETURNING r.id, r.body, r.handled_at, r.lock_expires_at, r.lock_client, p.order_no AS place
) SELECT {REQUEST_COLUMNS} FROM locked ORDER BY place, id
"""  # noqa: S608


# A clientKey is any text of up to 32 characters (service/queue_requests.py), NUL included, which PostgreSQL's
# text cannot hold: such a key is kept as this marker (longer than any key, so no key kept as it is starts
# with it) and its UTF-8 in hex.
NUL_KEY = "clientKey holding NUL, its UTF-8 in hex: "


def _kept(client_key: str) -> str:
    """A clientKey as this engine keeps it (and compares it)."""
    return NUL_KEY + client_key.encode().hex() if holds_nul(client_key) else client_key


def _given(kept: str | None) -> str | None:
    """A kept clientKey as it was given."""
    if kept is not None and kept.startswith(NUL_KEY):
        return bytes.fromhex(kept[len(NUL_KEY) :]).decode()
    return kept


def _request(row: asyncpg.Record) -> RequestRow:
    found = RequestRow.from_row(row)
    found.lock_client = _given(found.lock_client)
    return found


def _state(row: asyncpg.Record) -> QueueState:
    found = QueueState.from_row(row)
    found.client_key = _given(found.client_key)
    return found


async def _open(conn: Connection, pk: int, client_key: str) -> QueueState:
    """Lock the queue for this transaction (its row made on first use) with the client counted."""
    kind = await conn.fetchval("SELECT kind FROM stores WHERE pk = $1 FOR KEY SHARE", pk)
    if kind != StorageKind.REQUEST_QUEUE:
        raise NotFound("Request queue was not found.")
    await conn.execute("INSERT INTO request_queues (store_pk) VALUES ($1) ON CONFLICT DO NOTHING", pk)
    row = await conn.fetchrow(NOTE_CLIENT, pk, _kept(client_key))
    assert row is not None  # made just above, and the store's row is held
    return _state(row)


async def _reserve(conn: Connection, pk: int, n: int, now: int) -> int:
    last: int = await conn.fetchval(RESERVE, pk, n, now)
    return last - n + 1


async def _changed(conn: Connection, pk: int, now: int, *, total: int = 0, handled: int = 0) -> QueueState:
    row = await conn.fetchrow(CHANGED, pk, total, handled, now)
    assert row is not None
    return _state(row)


async def _held(conn: Connection, pk: int, request_id: str, client_key: str, now: int) -> None:
    """Refuse to touch a lock that is not there or is someone else's."""
    row = None
    if not holds_nul(request_id):
        row = await conn.fetchrow(
            "SELECT handled_at, lock_expires_at, lock_client FROM requests WHERE store_pk = $1 AND id = $2",
            pk, request_id,
        )  # fmt: skip
    check_held(row, _kept(client_key), now)


class PostgresQueues:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def states(self, store_pks: Sequence[int]) -> dict[int, QueueState]:
        if not store_pks:
            return {}
        rows = await self.db.fetch(
            f"SELECT {STATE_COLUMNS} FROM request_queues WHERE store_pk = ANY($1::bigint[])",  # noqa: S608
            list(store_pks),
        )
        return {row["store_pk"]: _state(row) for row in rows}

    async def note_client(self, store_pk: int, client_key: str) -> QueueState:
        async with self.db.transaction() as conn:
            return await _open(conn, store_pk, client_key)

    async def add(
        self, store_pk: int, requests: Sequence[NewRequest], *, forefront: bool, client_key: str, now: int
    ) -> list[RequestAdded]:
        async with self.db.transaction() as conn:
            await _open(conn, store_pk, client_key)
            found = await conn.fetch(
                "SELECT id, handled_at FROM requests WHERE store_pk = $1 AND id = ANY($2::text[])",
                store_pk, list({r.id for r in requests}),
            )  # fmt: skip
            results, new = sort_added(requests, found)
            if new:
                first = await _reserve(conn, store_pk, len(new), now)
                sign = -1 if forefront else 1
                await conn.execute(
                    "INSERT INTO requests (store_pk, id, order_no, handled_at, body)"
                    " SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bytea[])",
                    store_pk,
                    [r.id for r in new],
                    [sign * (first + i) for i in range(len(new))],
                    [r.handled_at for r in new],
                    [r.body for r in new],
                )
                done = sum(r.handled_at is not None for r in new)
                await _changed(conn, store_pk, now, total=len(new), handled=done)
                grown = sum(len(r.body) for r in new)
                await conn.execute(STORE_WRITTEN, store_pk, len(new), 0, grown, now)
        return results

    async def put(
        self, store_pk: int, request: NewRequest, *, forefront: bool, client_key: str, now: int
    ) -> RequestAdded:
        async with self.db.transaction() as conn:
            await _open(conn, store_pk, client_key)
            old = await conn.fetchrow(
                "SELECT handled_at, length(body) AS size FROM requests WHERE store_pk = $1 AND id = $2",
                store_pk, request.id,
            )  # fmt: skip
            order = await _reserve(conn, store_pk, 1, now) * (-1 if forefront else 1)
            was_handled = old is not None and old["handled_at"] is not None
            is_handled = request.handled_at is not None
            await conn.execute(
                "INSERT INTO requests (store_pk, id, order_no, handled_at, body) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (store_pk, id) DO UPDATE SET order_no = excluded.order_no,"
                " handled_at = excluded.handled_at, body = excluded.body, lock_expires_at = NULL,"
                " lock_client = NULL",
                store_pk, request.id, order, request.handled_at, request.body,
            )  # fmt: skip
            await _changed(conn, store_pk, now, total=int(old is None), handled=is_handled - was_handled)
            grown = len(request.body) - (old["size"] if old else 0)
            await conn.execute(STORE_WRITTEN, store_pk, 1, 0, grown, now)
        return RequestAdded(request.id, old is not None, was_handled)

    async def get(self, store_pk: int, request_id: str) -> RequestRow | None:
        if holds_nul(request_id):
            return None
        row = await self.db.fetchrow(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE store_pk = $1 AND id = $2",  # noqa: S608
            store_pk, request_id,
        )  # fmt: skip
        return _request(row) if row else None

    async def delete(self, store_pk: int, ids: Sequence[str], *, client_key: str, now: int) -> list[str]:
        async with self.db.transaction() as conn:
            await _open(conn, store_pk, client_key)
            gone = await conn.fetch(
                "DELETE FROM requests WHERE store_pk = $1 AND id = ANY($2::text[])"
                " RETURNING id, handled_at, length(body) AS size",
                store_pk, [rid for rid in ids if not holds_nul(rid)],
            )  # fmt: skip
            if gone:
                done = sum(row["handled_at"] is not None for row in gone)
                await _changed(conn, store_pk, now, total=-len(gone), handled=-done)
                size = sum(row["size"] for row in gone)
                await conn.execute(STORE_WRITTEN, store_pk, 0, len(gone), -size, now)
        return [row["id"] for row in gone]

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
        # No id holds NUL, which PostgreSQL's text cannot: the ids above such an `after` are those above its
        # part before the NUL, as on SQLite (keys.py pages keys the same way).
        where = "store_pk = $1 AND id > $2"
        args: list[object] = [store_pk, (after or "").partition(NUL)[0], limit, max_bytes]
        if pending:  # pending covers locked: a locked request is pending
            where += " AND handled_at IS NULL"
        elif locked:
            where += " AND handled_at IS NULL AND lock_expires_at > $5"
            args.append(now)
        candidates = f"SELECT {REQUEST_COLUMNS} FROM requests WHERE {where} ORDER BY id LIMIT $3"  # noqa: S608
        rows = await self.db.fetch(within_bytes(candidates, "id", "$4"), *args)
        return [_request(row) for row in rows]

    async def head(self, store_pk: int, *, limit: int, max_bytes: int, now: int) -> list[RequestRow]:
        rows = await self.db.fetch(HEAD, store_pk, now, limit, max_bytes)
        return [_request(row) for row in rows]

    async def lock_head(
        self, store_pk: int, *, limit: int, max_bytes: int, lock_ms: int, client_key: str, now: int
    ) -> LockedHead:
        expires = now + lock_ms
        async with self.db.transaction() as conn:
            state = await _open(conn, store_pk, client_key)  # the queue's row: one head lock at a time
            rows = await conn.fetch(
                LOCK_HEAD, store_pk, now, expires, _kept(client_key), expires * ORDER_SCALE, limit, max_bytes
            )
            if rows:
                state = await _changed(conn, store_pk, now)
            has_locked = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM requests WHERE store_pk = $1 AND lock_expires_at > $2"
                " AND handled_at IS NULL)",
                store_pk, now,
            )  # fmt: skip
        items = [_request(row) for row in rows]
        return LockedHead(items, state, bool(has_locked))

    async def prolong(
        self, store_pk: int, request_id: str, *, lock_ms: int, client_key: str, forefront: bool, now: int
    ) -> int:
        expires = now + lock_ms
        async with self.db.transaction() as conn:
            await _open(conn, store_pk, client_key)
            await _held(conn, store_pk, request_id, client_key, now)
            await conn.execute(
                "UPDATE requests SET lock_expires_at = $3, order_no = $4 WHERE store_pk = $1 AND id = $2",
                store_pk, request_id, expires, expires * ORDER_SCALE * (-1 if forefront else 1),
            )  # fmt: skip
            await _changed(conn, store_pk, now)
        return expires

    async def release(
        self, store_pk: int, request_id: str, *, client_key: str, forefront: bool, now: int
    ) -> None:
        async with self.db.transaction() as conn:
            await _open(conn, store_pk, client_key)
            await _held(conn, store_pk, request_id, client_key, now)
            order = await _reserve(conn, store_pk, 1, now) * (-1 if forefront else 1)
            await conn.execute(
                "UPDATE requests SET lock_expires_at = NULL, lock_client = NULL, order_no = $3"
                " WHERE store_pk = $1 AND id = $2",
                store_pk, request_id, order,
            )  # fmt: skip
            await _changed(conn, store_pk, now)

    async def unlock(self, store_pk: int, *, client_key: str, now: int) -> int:
        async with self.db.transaction() as conn:
            await _open(conn, store_pk, client_key)
            held = await conn.fetch(
                "SELECT id FROM requests WHERE store_pk = $1 AND lock_expires_at > $2"
                " AND handled_at IS NULL AND lock_client = $3 ORDER BY order_no, id",
                store_pk, now, _kept(client_key),
            )  # fmt: skip
            ids = [row["id"] for row in held]
            if ids:
                first = await _reserve(conn, store_pk, len(ids), now)
                await conn.execute(
                    "UPDATE requests r SET lock_expires_at = NULL, lock_client = NULL, order_no = u.place"
                    " FROM unnest($2::text[], $3::bigint[]) AS u (id, place)"
                    " WHERE r.store_pk = $1 AND r.id = u.id",
                    store_pk, ids, [first + i for i in range(len(ids))],
                )  # fmt: skip
                await _changed(conn, store_pk, now)
        return len(ids)
