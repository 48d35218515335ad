"""The rules for Actors and their runs, as far as storages reach into them.

Satchel runs nothing itself: a run is the record of a command that `satchel run` (or any client) started,
with the storages the command reads and writes. An Actor is made on first use by its owner and name, and
only its owner sees it and its runs. A run is read by its owner, or by anyone with its id when its general
access allows, as a store's is; only its owner changes it. Its default key-value store, dataset and request
queue are unnamed storages of its owner (so they follow the retention of unnamed storages), marked with the
run's actId and actRunId.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from satchel.clock import now_ms
from satchel.errors import Forbidden, InvalidRequest, NotFound, TooLarge, Unauthorized
from satchel.service.access import DEFAULT_GENERAL_ACCESS, GENERAL_ACCESS, Caller, Level, Need
from satchel.service.ids import new_id
from satchel.service.stores import Stores
from satchel.service.validation import MAX_LOG_BYTES, MAX_NAME, MEMORY_RANGE, NAME_RE, shown, split_reference
from satchel.storage import GeneralAccess, Storage, StoreRow, UserRow
from satchel.storage.rows import FINISHED, ActorRow, RunRow, RunStatus

# Terminal escapes that a command printed (colors, cursor moves, titles, character sets), which a log read
# without `raw` leaves out: a control sequence (ESC [ ... final), a string (ESC ] P X ^ _ ... BEL or ESC \\),
# or any other escape (ESC, intermediates, a final byte: ESC ( B, ESC 7, ESC =).
TERMINAL_ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]"
)
CLI_ORIGIN = "CLI"  # what `satchel run` starts its runs with: a run it drives, and ends
ORIGINS = (
    "DEVELOPMENT",
    "WEB",
    "API",
    "SCHEDULER",
    "TEST",
    "WEBHOOK",
    "ACTOR",
    CLI_ORIGIN,
    "CI",
    "STANDBY",
    "MCP",
)
STATUSES = tuple(RunStatus)
MAX_PAGE = 1000
LAST_SHOWABLE_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_STATUS_MESSAGE = 2000  # characters; one line of progress, shown in every copy of the run
# Text a run keeps (its status message, its events' names) is display text and names: NUL is refused, as
# PostgreSQL's text cannot hold it.
NUL = "\x00"
# An exit code is a 32-bit signed integer, as the engines keep it (PostgreSQL's integer).
INT32 = range(-(2**31), 2**31)
MAX_EVENT_NAME = 256
MAX_IDEMPOTENCY_KEY = 256
# Satchel neither limits nor times out what it records; these are the numbers the run shows.
DEFAULT_MEMORY_MBYTES = 1024
RUN_NOT_FOUND = "Actor run was not found."
ACTOR_NOT_FOUND = "Actor was not found."


@dataclass(slots=True)
class RunPage:
    total: int
    offset: int
    limit: int
    desc: bool
    items: list[RunRow]


def driven(run: RunRow) -> bool:
    """Whether `satchel run` drives the run (it starts its runs with origin CLI): there is a command to tell
    of a graceful abort, and to end the run when that command has ended."""
    return run.origin == CLI_ORIGIN


def run_level(caller: Caller, run: RunRow) -> Level:
    """The caller's level on a run: its owner's, or read by its id when its general access allows."""
    if caller.user is not None and caller.user.id == run.user_id:
        return Level.OWNER
    access = run.general_access
    if access is GeneralAccess.FOLLOW_USER_SETTING:
        access = run.owner_default_access
    if access in (GeneralAccess.ANYONE_WITH_ID_CAN_READ, GeneralAccess.ANYONE_WITH_NAME_CAN_READ):
        return Level.READ
    return Level.NONE


class Runs:
    def __init__(self, storage: Storage, stores: Stores, datasets: Stores, queues: Stores) -> None:
        self.storage = storage
        self.table = storage.runs
        self.stores = stores  # key-value stores
        self.datasets = datasets
        self.queues = queues

    # --- Actors

    async def actor(self, caller: Caller, ref: str, *, create: bool = False) -> ActorRow:
        """The caller's Actor by id, `username~name` or `~name`; with `create`, made if a name names none."""
        user = _require_user(caller)
        actor_id, username, name = split_reference(ref)
        if actor_id is not None:
            found = await self.table.actor_by_id(actor_id)
            if found is None or found.user_id != user.id:
                raise NotFound(ACTOR_NOT_FOUND)
            return found
        if username and username != user.username:
            raise NotFound(ACTOR_NOT_FOUND)  # Satchel's Actors are their owners' own
        name = check_actor_name(name or "")
        found = await self.table.actor_by_name(user.id, name)
        if found is not None:
            return found
        if not create:
            raise NotFound(ACTOR_NOT_FOUND)
        now = now_ms()
        return await self.table.create_actor(ActorRow(new_id(), user.id, user.username, name, now, now))

    # --- runs

    async def start(
        self,
        caller: Caller,
        actor_ref: str,
        *,
        origin: str | None,
        memory_mbytes: int | None,
        timeout_secs: int | None,
        write_input: Callable[[StoreRow], Awaitable[int]] | None,
    ) -> RunRow:
        """A new RUNNING run of the Actor (made on first use), with its own new default storages.

        write_input stores INPUT in the run's key-value store and returns its length, before the run exists:
        a run is never seen without the input it was started with.
        """
        user = _require_user(caller)
        origin = _origin(origin or "API")
        memory = DEFAULT_MEMORY_MBYTES if memory_mbytes is None else memory_mbytes
        if not MEMORY_RANGE[0] <= memory <= MEMORY_RANGE[1]:
            raise InvalidRequest(
                f"Parameter `memory` must be between {MEMORY_RANGE[0]} and {MEMORY_RANGE[1]} megabytes.",
                type="invalid-value",
            )
        actor = await self.actor(caller, actor_ref, create=True)
        kvs, _ = await self.stores.get_or_create(caller, None, None)
        try:
            input_length = await write_input(kvs) if write_input is not None else 0
        except BaseException:
            # Refused input (a lying encoding, a bomb) leaves no storage behind.
            await self.storage.stores.delete(kvs.pk)
            raise
        dataset, _ = await self.datasets.get_or_create(caller, None, None)
        queue, _ = await self.queues.get_or_create(caller, None, None)
        run = RunRow(
            id=new_id(),
            act_id=actor.id,
            user_id=user.id,
            status=RunStatus.RUNNING,
            started_at=now_ms(),
            finished_at=None,
            exit_code=None,
            status_message=None,
            is_status_message_terminal=False,
            origin=origin,
            general_access=DEFAULT_GENERAL_ACCESS,
            timeout_secs=timeout_secs or 0,
            memory_mbytes=memory,
            input_body_len=input_length,
            default_key_value_store_id=kvs.id,
            default_dataset_id=dataset.id,
            default_request_queue_id=queue.id,
        )
        return await self.table.create(run)

    async def get(self, caller: Caller, run_id: str, need: Need = Need.READ) -> RunRow:
        run = await self.table.by_id(run_id)
        have = run_level(caller, run) if run is not None else Level.NONE
        if run is None or have is Level.NONE:
            if caller.user is None:
                raise NotFound(
                    RUN_NOT_FOUND + " (No token was sent; private runs need one.)",
                    type="record-or-token-not-found",
                )
            raise NotFound(RUN_NOT_FOUND)
        if need is not Need.READ and have < Level.OWNER:
            if caller.user is None:
                raise Unauthorized("Authentication token was not provided.")
            raise Forbidden("You do not have permission to change this Actor run.")
        return run

    async def update(self, caller: Caller, run_id: str, body: dict[str, Any]) -> RunRow:
        """Set what the body gives of statusMessage, isStatusMessageTerminal, generalAccess, and (for whoever
        runs the command) status, exitCode and finishedAt. Other fields (a `runId`) are ignored."""
        run = await self.get(caller, run_id, Need.OWN)
        changes = _changes(run, body)
        updated = await self.table.update(run.id, changes)
        if updated is None:
            raise NotFound(RUN_NOT_FOUND)
        if "general_access" in changes:
            await self._share_storages(caller, updated)
        return updated

    async def abort(self, caller: Caller, run_id: str, *, gracefully: bool = False) -> RunRow:
        """Mark the run ABORTED, unless it has finished already (then it is left as it is).

        Gracefully, a run that `satchel run` drives (origin CLI) is marked ABORTING instead: `satchel run`
        tells its command, as the platform's graceful abort does, and marks the run ABORTED once the command
        has ended. Any other run has nobody to tell or to end it, and is ABORTED at once; so is a run aborted
        again while it is ABORTING (asked twice, as a second Ctrl-C, it stops now).
        """
        run = await self.get(caller, run_id, Need.OWN)
        graceful = gracefully and driven(run) and run.status != RunStatus.ABORTING
        aborted = await self.table.abort(run.id, _not_before_start(run, now_ms()), gracefully=graceful)
        if aborted is None:
            raise NotFound(RUN_NOT_FOUND)
        return aborted

    async def delete(self, caller: Caller, run_id: str) -> None:
        """Delete a finished run, as its owner; its storages stay (kept or expiring as any others)."""
        run = await self.get(caller, run_id, Need.OWN)
        if run.status in FINISHED and await self.table.delete(run.id):
            return
        current = await self.table.by_id(run.id)
        if current is None:  # deleted meanwhile
            return
        raise InvalidRequest(f"Only a finished run can be deleted; this one is {current.status}.")

    async def charge(
        self, caller: Caller, run_id: str, event_name: Any, count: Any, idempotency_key: str | None
    ) -> bool:
        """Count `count` events of `event_name` for the run; a key the run has seen already counts nothing."""
        run = await self.get(caller, run_id, Need.OWN)
        if not isinstance(event_name, str) or not 0 < len(event_name) <= MAX_EVENT_NAME or NUL in event_name:
            raise InvalidRequest(
                f"Field `eventName` must be a string of 1 to {MAX_EVENT_NAME} characters, without NUL.",
                type="invalid-value",
            )
        if count is None:
            count = 1
        if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= 2**31:
            raise InvalidRequest("Field `count` must be a positive integer.", type="invalid-value")
        key = idempotency_key or new_id()
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidRequest(
                f"The idempotency-key header is longer than {MAX_IDEMPOTENCY_KEY} characters.",
                type="invalid-value",
            )
        return await self.table.charge(run.id, key, event_name, count, now_ms())

    async def charged_event_counts(self, run: RunRow) -> dict[str, int]:
        return await self.table.charged_event_counts(run.id)

    # --- The run's log: what its command printed, as `satchel run` sends it (each line stamped with its time)

    async def log(self, run: RunRow, start: int = 0) -> bytes:
        """The log of a run the caller has read (`get`), from byte `start` on."""
        return await self.table.log(run.id, start)

    async def log_end(self, run: RunRow, most: int) -> tuple[bytes, int]:
        """The last `most` bytes of the log of a run the caller has read, and the log's whole size."""
        size = await self.table.log_size(run.id)
        return await self.table.log(run.id, max(size - most, 0)), size

    async def append_log(self, caller: Caller, run_id: str, text: bytes) -> None:
        """Add to the end of the run's log, as its owner: what fits in MAX_LOG_BYTES, in whole lines; the rest
        is refused (413), saying how much was kept."""
        run = await self.get(caller, run_id, Need.OWN)
        kept = await self.table.append_log(run.id, text, MAX_LOG_BYTES) if text else 0
        if kept < len(text):
            raise TooLarge(
                f"The run's log has reached {MAX_LOG_BYTES // 2**20} MiB, as much as Satchel keeps of a log;"
                f" {kept} bytes of these {len(text)} were kept.",
                type="log-too-large",
            )

    async def page(
        self,
        caller: Caller,
        actor_ref: str | None,
        *,
        offset: int,
        limit: int,
        desc: bool,
        status: str | None = None,
        origin: str | None = None,
        started_after: str | None = None,
        started_before: str | None = None,
    ) -> RunPage:
        """A page of the caller's runs (of one Actor, with actor_ref) in order of their start."""
        user = _require_user(caller)
        act_id = (await self.actor(caller, actor_ref)).id if actor_ref is not None else None
        limit = min(limit, MAX_PAGE) if limit > 0 else MAX_PAGE
        total, rows = await self.table.page(
            user.id,
            act_id=act_id,
            statuses=_statuses(status),
            origin=_origin(origin) if origin else None,
            started_after=_time("startedAfter", started_after),
            started_before=_time("startedBefore", started_before),
            offset=offset,
            limit=limit,
            desc=desc,
        )
        return RunPage(total, offset, limit, desc, rows)

    async def last(
        self, caller: Caller, actor_ref: str, *, status: str | None = None, origin: str | None = None
    ) -> RunRow:
        """The Actor's run that started last (with this status and origin, if given)."""
        page = await self.page(caller, actor_ref, offset=0, limit=1, desc=True, status=status, origin=origin)
        if not page.items:
            raise NotFound(RUN_NOT_FOUND)
        return page.items[0]

    async def _share_storages(self, caller: Caller, run: RunRow) -> None:
        """Give the run's storages the run's general access: it says who may read the run and its storages."""
        access = {"generalAccess": run.general_access}
        for stores, store_id in (
            (self.stores, run.default_key_value_store_id),
            (self.datasets, run.default_dataset_id),
            (self.queues, run.default_request_queue_id),
        ):
            try:
                await stores.update(caller, store_id, access)
            except NotFound:  # swept by retention, or deleted by its owner: nothing to share
                continue


def without_escapes(text: bytes) -> bytes:
    """Log text as it reads, without the terminal escapes in it."""
    return TERMINAL_ESCAPES.sub(b"", text) if b"\x1b" in text else text


def check_actor_name(name: str) -> str:
    if NAME_RE.fullmatch(name) is None:
        detail = "use only letters, digits and hyphens, starting and ending with a letter or digit"
        if len(name) > MAX_NAME:
            detail = f"it is {len(name)} characters long (the limit is {MAX_NAME})"
        raise InvalidRequest(f"Actor name {shown(name)} is not valid: {detail}.", type="invalid-value")
    return name


def _changes(run: RunRow, body: dict[str, Any]) -> dict[str, object]:
    changes: dict[str, object] = {}
    if "statusMessage" in body:
        message = body["statusMessage"]
        if message is not None and (
            not isinstance(message, str) or len(message) > MAX_STATUS_MESSAGE or NUL in message
        ):
            raise InvalidRequest(
                f"Field `statusMessage` must be null or at most {MAX_STATUS_MESSAGE} characters of text,"
                " without NUL.",
                type="invalid-value",
            )
        changes["status_message"] = message
    if body.get("isStatusMessageTerminal") is not None:
        terminal = body["isStatusMessageTerminal"]
        if not isinstance(terminal, bool):
            raise InvalidRequest("Field `isStatusMessageTerminal` must be a boolean.", type="invalid-value")
        changes["is_status_message_terminal"] = terminal
    if body.get("generalAccess") is not None:
        if body["generalAccess"] not in GENERAL_ACCESS:
            raise InvalidRequest(
                f"Field `generalAccess` must be one of {', '.join(GENERAL_ACCESS)}.", type="invalid-value"
            )
        changes["general_access"] = GeneralAccess(body["generalAccess"])
    if "exitCode" in body:
        code = body["exitCode"]
        if code is not None and (
            isinstance(code, bool) or not isinstance(code, int) or not INT32.start <= code < INT32.stop
        ):
            raise InvalidRequest(
                f"Field `exitCode` must be null or an integer from {INT32.start} to {INT32.stop - 1}.",
                type="invalid-value",
            )
        changes["exit_code"] = code
    if "finishedAt" in body:
        finished = body["finishedAt"]
        if finished is not None and not isinstance(finished, str):
            raise InvalidRequest("Field `finishedAt` must be an ISO 8601 time or null.", type="invalid-value")
        changes["finished_at"] = _time("finishedAt", finished)
    if body.get("status") is not None:
        if body["status"] not in STATUSES:
            raise InvalidRequest(
                f"Field `status` must be one of {', '.join(STATUSES)}.", type="invalid-value"
            )
        status = RunStatus(body["status"])
        changes["status"] = status
        # A run that ends has ended now, unless told when; one that goes on has not ended.
        if status in FINISHED and "finishedAt" not in body and run.finished_at is None:
            changes["finished_at"] = now_ms()
        elif status not in FINISHED and "finishedAt" not in body:
            changes["finished_at"] = None
    if isinstance(finished_at := changes.get("finished_at"), int):
        changes["finished_at"] = _not_before_start(run, finished_at)
    return changes


def _not_before_start(run: RunRow, finished_at: int) -> int:
    """A run never finishes before it started. A finishedAt earlier than its startedAt comes of a clock behind
    the one that started it (the sender's, another API node's, this one's stepped back) and is taken as the
    startedAt: the run still ends (its status is not refused for its sender's clock), in no time."""
    return max(finished_at, run.started_at)


def _statuses(status: str | None) -> Sequence[str]:
    """`status` as the clients send it: one status, or several comma-joined."""
    if not status:
        return ()
    wanted = [part.strip() for part in status.split(",") if part.strip()]
    for part in wanted:
        if part not in STATUSES:
            raise InvalidRequest(
                f"Parameter `status` must be one of {', '.join(STATUSES)} (or several, comma-separated).",
                type="invalid-value",
            )
    return wanted


def _origin(origin: str) -> str:
    if origin not in ORIGINS:
        raise InvalidRequest(f"`origin` must be one of {', '.join(ORIGINS)}.", type="invalid-value")
    return origin


def _time(name: str, text: str | None) -> int | None:
    """An ISO 8601 time (UTC when it names no zone) as epoch milliseconds."""
    if text is None or text == "":
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidRequest(f"`{name}` must be an ISO 8601 time.", type="invalid-value") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ms = int(moment.timestamp() * 1000)
    # What the API can show again: a time before 1970 or past 9999 in UTC has no ISO form here.
    if not 0 <= ms <= LAST_SHOWABLE_MS:
        raise InvalidRequest(f"`{name}` must fall between 1970 and 9999 (UTC).", type="invalid-value")
    return ms


def _require_user(caller: Caller) -> UserRow:
    if caller.user is None:
        raise Unauthorized("Authentication token was not provided.")
    return caller.user
