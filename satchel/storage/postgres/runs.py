"""Actors and runs in PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from satchel.storage.postgres.db import Database, holds_nul
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

# A log's last piece: its number and where it ends, the log's size.
LAST_PIECE = (
    "SELECT seq, start + length(body) AS end FROM run_log WHERE run_id = $1 ORDER BY seq DESC LIMIT 1"
)
INSERT_RUN = (
    f"INSERT INTO runs ({', '.join(RUN_INSERTED)})"  # noqa: S608 - constants
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(RUN_INSERTED) + 1))})"
)
UNFINISHED = [str(status) for status in RunStatus if status not in FINISHED]


def _value(value: object) -> object:
    """A value as asyncpg takes it: enums as their text."""
    return str(value) if isinstance(value, Enum) else value


class PostgresRuns:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def actor_by_id(self, actor_id: str) -> ActorRow | None:
        if holds_nul(actor_id):
            return None
        row = await self.db.fetchrow(f"{ACTOR_SELECT} WHERE a.id = $1", actor_id)
        return ActorRow.from_row(row) if row else None

    async def actor_by_name(self, user_id: str, name: str) -> ActorRow | None:
        if holds_nul(user_id, name):
            return None
        row = await self.db.fetchrow(f"{ACTOR_SELECT} WHERE a.user_id = $1 AND a.name = $2", user_id, name)
        return ActorRow.from_row(row) if row else None

    async def create_actor(self, actor: ActorRow) -> ActorRow:
        await self.db.execute(
            "INSERT INTO actors (id, user_id, name, created_at, modified_at) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (user_id, name) DO NOTHING",
            actor.id, actor.user_id, actor.name, actor.created_at, actor.modified_at,
        )  # fmt: skip
        found = await self.actor_by_name(actor.user_id, actor.name)
        assert found is not None  # Actors are never deleted
        return found

    async def create(self, run: RunRow) -> RunRow:
        async with self.db.transaction() as conn:
            await conn.execute(INSERT_RUN, *(_value(getattr(run, name)) for name in RUN_INSERTED))
            await conn.execute(
                "UPDATE stores SET act_id = $1, act_run_id = $2 WHERE id = ANY($3::text[])",
                run.act_id,
                run.id,
                [run.default_key_value_store_id, run.default_dataset_id, run.default_request_queue_id],
            )
        found = await self.by_id(run.id)
        assert found is not None  # runs are never deleted
        return found

    async def by_id(self, run_id: str) -> RunRow | None:
        if holds_nul(run_id):
            return None
        row = await self.db.fetchrow(f"{RUN_SELECT} WHERE r.id = $1", run_id)
        return RunRow.from_row(row) if row else None

    async def update(self, run_id: str, changes: Mapping[str, object]) -> RunRow | None:
        unknown = changes.keys() - RUN_CHANGEABLE
        if unknown:
            raise ValueError(f"Not a changeable column of runs: {sorted(unknown)}")
        if not changes or holds_nul(run_id):
            return await self.by_id(run_id)
        names = list(changes)
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
        status = await self.db.execute(
            f"UPDATE runs SET {assignments} WHERE id = $1",  # noqa: S608 - known column names
            run_id,
            *(_value(changes[name]) for name in names),
        )
        if status.endswith(" 0"):
            return None
        return await self.by_id(run_id)

    async def abort(self, run_id: str, now: int, *, gracefully: bool = False) -> RunRow | None:
        status, finished_at = aborted(now, gracefully=gracefully)
        await self.db.execute(
            "UPDATE runs SET status = $2, finished_at = $3 WHERE id = $1 AND status = ANY($4::text[])",
            run_id, str(status), finished_at, UNFINISHED,
        )  # fmt: skip
        return await self.by_id(run_id)

    async def delete(self, run_id: str) -> bool:
        if holds_nul(run_id):
            return False
        async with self.db.transaction() as conn:
            # Locked, so that it stays finished until it is gone; its charges go first, as they refer to it.
            finished = await conn.fetchval(
                "SELECT 1 FROM runs WHERE id = $1 AND NOT status = ANY($2::text[]) FOR UPDATE",
                run_id,
                UNFINISHED,
            )
            if finished is None:
                return False
            await conn.execute("DELETE FROM run_charges WHERE run_id = $1", run_id)
            await conn.execute("DELETE FROM run_log WHERE run_id = $1", run_id)
            await conn.execute("DELETE FROM runs WHERE id = $1", run_id)
            return True

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
        args: list[Any] = [user_id]
        where = ["r.user_id = $1"]

        def add(condition: str, value: object) -> None:
            args.append(value)
            where.append(condition.replace("?", f"${len(args)}"))

        if act_id is not None:
            add("r.act_id = ?", act_id)
        if statuses:
            add("r.status = ANY(?::text[])", list(statuses))
        if origin is not None:
            add("r.origin = ?", origin)
        if started_after is not None:
            add("r.started_at >= ?", started_after)
        if started_before is not None:
            add("r.started_at <= ?", started_before)
        condition = " AND ".join(where)
        order = "DESC" if desc else "ASC"
        n = len(args)
        async with self.db.connection() as conn:
            total: int = await conn.fetchval(f"SELECT count(*) FROM runs r WHERE {condition}", *args)  # noqa: S608
            rows = await conn.fetch(
                f"SELECT {RUN_COLUMNS} FROM runs r JOIN users u ON u.id = r.user_id WHERE {condition}"  # noqa: S608
                f" ORDER BY r.started_at {order}, r.id {order} LIMIT ${n + 1} OFFSET ${n + 2}",
                *args, limit, offset,
            )  # fmt: skip
        return total, [RunRow.from_row(row) for row in rows]

    async def charge(self, run_id: str, idempotency_key: str, event_name: str, count: int, now: int) -> bool:
        status = await self.db.execute(
            "INSERT INTO run_charges (run_id, idempotency_key, event_name, count, charged_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id, idempotency_key) DO NOTHING",
            run_id, idempotency_key, event_name, count, now,
        )  # fmt: skip
        return status.endswith(" 1")

    async def charged_event_counts(self, run_id: str) -> dict[str, int]:
        rows = await self.db.fetch(
            "SELECT event_name, sum(count)::bigint AS total FROM run_charges WHERE run_id = $1"
            " GROUP BY event_name ORDER BY event_name",
            run_id,
        )
        return {row["event_name"]: row["total"] for row in rows}

    async def append_log(self, run_id: str, text: bytes, limit: int) -> int:
        async with self.db.transaction() as conn:
            # The run's row, locked, puts one log's appends in a line; a run deleted meanwhile has none.
            if await conn.fetchval("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", run_id) is None:
                return 0
            last = await conn.fetchrow(LAST_PIECE, run_id)
            seq, end = (last["seq"] + 1, last["end"]) if last else (0, 0)
            kept = fitting(text, limit - end)
            if kept:
                await conn.execute(
                    "INSERT INTO run_log (run_id, seq, start, body) VALUES ($1, $2, $3, $4)",
                    run_id, seq, end, kept,
                )  # fmt: skip
            return len(kept)

    async def log_size(self, run_id: str) -> int:
        last = await self.db.fetchrow(LAST_PIECE, run_id)
        return last["end"] if last else 0

    async def log(self, run_id: str, start: int) -> bytes:
        rows = await self.db.fetch(
            "SELECT start, body FROM run_log WHERE run_id = $1 AND start + length(body) > $2 ORDER BY seq",
            run_id,
            start,
        )
        return from_pieces(rows, start)
