"""Actors and runs in SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from satchel.storage.rows import (
    ACTOR_SELECT,
    FINISHED,
    RUN_CHANGEABLE,
    RUN_COLUMNS,
    RUN_INSERTED,
    RUN_SELECT,
    ActorRow,
    RunRow,
    RunStatus,
    aborted,
    fitting,
    from_pieces,
)
from satchel.storage.sqlite.db import Database

INSERT_RUN = (
    f"INSERT INTO runs ({', '.join(RUN_INSERTED)})"  # noqa: S608 - constants
    f" VALUES ({', '.join(':' + name for name in RUN_INSERTED)})"
)
UNFINISHED = ", ".join(f"'{status}'" for status in RunStatus if status not in FINISHED)


def _insert_actor(conn: sqlite3.Connection, actor: ActorRow) -> None:
    conn.execute(
        "INSERT INTO actors (id, user_id, name, created_at, modified_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (user_id, name) DO NOTHING",
        (actor.id, actor.user_id, actor.name, actor.created_at, actor.modified_at),
    )


def _insert_run(conn: sqlite3.Connection, run: RunRow) -> None:
    values = {name: getattr(run, name) for name in RUN_INSERTED}
    conn.execute(INSERT_RUN, values)
    stores = (run.default_key_value_store_id, run.default_dataset_id, run.default_request_queue_id)
    conn.execute(
        "UPDATE stores SET act_id = ?, act_run_id = ? WHERE id IN (?, ?, ?)", (run.act_id, run.id, *stores)
    )


def _update_run(conn: sqlite3.Connection, run_id: str, changes: dict[str, object]) -> int:
    assignments = ", ".join(f"{name} = :{name}" for name in changes)
    sql = f"UPDATE runs SET {assignments} WHERE id = :run_id"  # noqa: S608 - known column names
    return conn.execute(sql, {**changes, "run_id": run_id}).rowcount


def _abort_run(conn: sqlite3.Connection, run_id: str, status: RunStatus, finished_at: int | None) -> None:
    conn.execute(
        f"UPDATE runs SET status = ?, finished_at = ? WHERE id = ? AND status IN ({UNFINISHED})",  # noqa: S608
        (status, finished_at, run_id),
    )


def _delete_run(conn: sqlite3.Connection, run_id: str) -> bool:
    cur = conn.execute(f"DELETE FROM runs WHERE id = ? AND status NOT IN ({UNFINISHED})", (run_id,))  # noqa: S608
    if not cur.rowcount:
        return False
    conn.execute("DELETE FROM run_charges WHERE run_id = ?", (run_id,))
    conn.execute("DELETE FROM run_log WHERE run_id = ?", (run_id,))
    return True


# A log's last piece: its number and where it ends, the log's size.
LAST_PIECE = "SELECT seq, start + length(body) AS end FROM run_log WHERE run_id = ? ORDER BY seq DESC LIMIT 1"


def _append_log(conn: sqlite3.Connection, run_id: str, text: bytes, limit: int) -> int:
    last = conn.execute(LAST_PIECE, (run_id,)).fetchone()
    seq, end = (last[0] + 1, last[1]) if last else (0, 0)
    kept = fitting(text, limit - end)
    if kept:
        conn.execute(
            "INSERT INTO run_log (run_id, seq, start, body) VALUES (?, ?, ?, ?)", (run_id, seq, end, kept)
        )
    return len(kept)


def _charge_run(  # noqa: PLR0917 - Database.write passes a job's arguments by position
    conn: sqlite3.Connection, run_id: str, idempotency_key: str, event_name: str, count: int, now: int
) -> bool:
    cur = conn.execute(
        "INSERT INTO run_charges (run_id, idempotency_key, event_name, count, charged_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, idempotency_key) DO NOTHING",
        (run_id, idempotency_key, event_name, count, now),
    )
    return cur.rowcount == 1


class SqliteRuns:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def actor_by_id(self, actor_id: str) -> ActorRow | None:
        row = self.db.one(f"{ACTOR_SELECT} WHERE a.id = ?", (actor_id,))
        return ActorRow.from_row(row) if row else None

    async def actor_by_name(self, user_id: str, name: str) -> ActorRow | None:
        row = self.db.one(f"{ACTOR_SELECT} WHERE a.user_id = ? AND a.name = ?", (user_id, name))
        return ActorRow.from_row(row) if row else None

    async def create_actor(self, actor: ActorRow) -> ActorRow:
        await self.db.write(_insert_actor, actor)
        found = await self.actor_by_name(actor.user_id, actor.name)
        assert found is not None  # Actors are never deleted
        return found

    async def create(self, run: RunRow) -> RunRow:
        await self.db.write(_insert_run, run)
        return self._reread(run.id)

    def _reread(self, run_id: str) -> RunRow:
        found = self.db.one(f"{RUN_SELECT} WHERE r.id = ?", (run_id,))
        assert found is not None  # runs are never deleted
        return RunRow.from_row(found)

    async def by_id(self, run_id: str) -> RunRow | None:
        row = self.db.one(f"{RUN_SELECT} WHERE r.id = ?", (run_id,))
        return RunRow.from_row(row) if row else None

    async def update(self, run_id: str, changes: Mapping[str, object]) -> RunRow | None:
        unknown = changes.keys() - RUN_CHANGEABLE
        if unknown:
            raise ValueError(f"Not a changeable column of runs: {sorted(unknown)}")
        if not changes:
            return await self.by_id(run_id)
        if await self.db.write(_update_run, run_id, dict(changes)) == 0:
            return None
        return self._reread(run_id)

    async def abort(self, run_id: str, now: int, *, gracefully: bool = False) -> RunRow | None:
        status, finished_at = aborted(now, gracefully=gracefully)
        await self.db.write(_abort_run, run_id, status, finished_at)
        return await self.by_id(run_id)

    async def delete(self, run_id: str) -> bool:
        return await self.db.write(_delete_run, run_id)

    async def page(
        self,
        user_id: str,
        *,
        act_id: str | None,
        statuses: Sequence[str],
        origin: str | None,
        started_after: int | None,
        started_before: int | None,
        offset: int,
        limit: int,
        desc: bool,
    ) -> tuple[int, list[RunRow]]:
        where = ["r.user_id = :user"]
        args: dict[str, Any] = {"user": user_id, "limit": limit, "offset": offset}
        if act_id is not None:
            where.append("r.act_id = :act")
            args["act"] = act_id
        if statuses:
            names = [f":status{i}" for i in range(len(statuses))]
            where.append(f"r.status IN ({', '.join(names)})")
            args.update({name[1:]: status for name, status in zip(names, statuses, strict=True)})
        if origin is not None:
            where.append("r.origin = :origin")
            args["origin"] = origin
        if started_after is not None:
            where.append("r.started_at >= :after")
            args["after"] = started_after
        if started_before is not None:
            where.append("r.started_at <= :before")
            args["before"] = started_before
        condition = " AND ".join(where)
        total = self.db.one(f"SELECT count(*) FROM runs r WHERE {condition}", args)[0]  # type: ignore[index]  # noqa: S608
        order = "DESC" if desc else "ASC"
        rows = self.db.all(
            f"SELECT {RUN_COLUMNS} FROM runs r JOIN users u ON u.id = r.user_id WHERE {condition}"  # noqa: S608
            f" ORDER BY r.started_at {order}, r.id {order} LIMIT :limit OFFSET :offset",
            args,
        )
        return total, [RunRow.from_row(row) for row in rows]

    async def charge(self, run_id: str, idempotency_key: str, event_name: str, count: int, now: int) -> bool:
        return await self.db.write(_charge_run, run_id, idempotency_key, event_name, count, now)

    async def charged_event_counts(self, run_id: str) -> dict[str, int]:
        rows = self.db.all(
            "SELECT event_name, sum(count) AS total FROM run_charges WHERE run_id = ? GROUP BY event_name"
            " ORDER BY event_name",
            (run_id,),
        )
        return {row["event_name"]: row["total"] for row in rows}

    async def append_log(self, run_id: str, text: bytes, limit: int) -> int:
        return await self.db.write(_append_log, run_id, text, limit, grows=True)

    async def log_size(self, run_id: str) -> int:
        last = self.db.one(LAST_PIECE, (run_id,))
        return last["end"] if last else 0

    async def log(self, run_id: str, start: int) -> bytes:
        rows = self.db.all(
            "SELECT start, body FROM run_log WHERE run_id = ? AND start + length(body) > ? ORDER BY seq",
            (run_id, start),
        )
        return from_pieces(rows, start)
