"""Actor runs: start one (its body is the INPUT), read, change, abort, charge and list them.

A run's storages are reached through it as well (`/v2/actor-runs/{runId}/dataset/...`): api/chained.py makes
those routes from the storages' own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from satchel.api import wire
from satchel.api.http import (
    Call,
    body_chunks,
    content_encoding,
    declared_length,
    read_decoded,
    read_json_object,
)
from satchel.clock import iso, now_ms
from satchel.errors import NotFound
from satchel.service.access import Need
from satchel.service.encoding import normalize
from satchel.service.runs import RunPage, driven, without_escapes
from satchel.service.validation import MAX_LOG_APPEND
from satchel.storage import StoreRow
from satchel.storage.rows import FINISHED, RunRow

BUILD_NUMBER = "0.0.1"  # Satchel has no builds; the clients need a build number of this form
DEFAULT_INPUT_TYPE = "application/json"
MAX_WAIT_SECONDS = 60
WAIT_STEP_SECONDS = 0.25
LOG_TYPE = "text/plain; charset=utf-8"
LOG_STEP_SECONDS = 1.0  # how often a followed log is read again for what was added


def run_url(base_url: str, run_id: str) -> str:
    return f"{base_url}/v2/actor-runs/{run_id}"


def _common(row: RunRow) -> dict[str, Any]:
    """What a run's object and its list item share."""
    return {
        "id": row.id,
        "actId": row.act_id,
        "userId": row.user_id,
        "actorTaskId": None,
        "status": row.status,
        "startedAt": iso(row.started_at),
        "finishedAt": iso(row.finished_at) if row.finished_at is not None else None,
        "buildId": row.act_id,  # no builds: the Actor stands for its only one
        "buildNumber": BUILD_NUMBER,
        "meta": {"origin": row.origin},
        "usageTotalUsd": 0,
        "defaultKeyValueStoreId": row.default_key_value_store_id,
        "defaultDatasetId": row.default_dataset_id,
        "defaultRequestQueueId": row.default_request_queue_id,
    }


def run_object(row: RunRow, charged: dict[str, int]) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "inputBodyLen": row.input_body_len,
        "restartCount": 0,
        "resurrectCount": 0,
        "computeUnits": 0,
    }
    if row.finished_at is not None:
        stats["durationMillis"] = max(row.finished_at - row.started_at, 0)
        stats["runTimeSecs"] = stats["durationMillis"] / 1000
    return {
        **_common(row),
        "statusMessage": row.status_message,
        "isStatusMessageTerminal": row.is_status_message_terminal,
        "exitCode": row.exit_code,
        "generalAccess": row.general_access,
        "stats": stats,
        "options": {
            "build": "latest",
            "timeoutSecs": row.timeout_secs,
            "memoryMbytes": row.memory_mbytes,
            "diskMbytes": 2 * row.memory_mbytes,
        },
        # A complete pricing object or null: the clients refuse `{}`. Runs here are free.
        "pricingInfo": None,
        "chargedEventCounts": charged,
    }


def run_page(page: RunPage) -> dict[str, Any]:
    return {
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
        "desc": page.desc,
        "count": len(page.items),
        "items": [_common(row) for row in page.items],
    }


async def _answer(
    call: Call, row: RunRow, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    charged = await call.services.runs.charged_event_counts(row)
    return wire.json_response(run_object(row, charged), status, headers)


async def _input(call: Call) -> AsyncIterator[bytes] | None:
    """The request's body as a stream, or None when it has none (then the run has no INPUT)."""
    chunks = body_chunks(call.request)
    first = await anext(chunks, None)
    if first is None:
        return None

    async def whole() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return whole()


async def start_run(call: Call) -> Response:
    normalize(content_encoding(call.request))  # refused before the run's storages are made
    body = await _input(call)

    async def write_input(store: StoreRow) -> int:
        assert body is not None
        _, head = await call.services.records.put(
            call.caller,
            store.id,
            "INPUT",
            content_type=call.header(b"content-type") or DEFAULT_INPUT_TYPE,
            content_encoding=content_encoding(call.request),
            chunks=body,
            declared_size=declared_length(call.request),
        )
        return head.raw_size

    timeout = call.number("timeout", 0)
    memory = call.query.get("memory")
    row = await call.services.runs.start(
        call.caller,
        call.params["actorId"],
        origin=call.text("origin"),
        memory_mbytes=call.number("memory", 0) if memory else None,
        timeout_secs=timeout,
        write_input=write_input if body is not None else None,
    )
    return await _answer(call, row, 201, {"location": run_url(call.base_url, row.id)})


async def _finished(call: Call, row: RunRow) -> RunRow:
    """The run once it has finished, or as it is after `waitForFinish` seconds (none: at once)."""
    wait = min(call.number("waitForFinish", 0), MAX_WAIT_SECONDS)
    deadline = now_ms() + wait * 1000
    while row.status not in FINISHED and now_ms() < deadline:
        await asyncio.sleep(WAIT_STEP_SECONDS)
        row = await call.services.runs.get(call.caller, row.id)
    return row


async def get_actor(call: Call) -> Response:
    actor = await call.services.runs.actor(call.caller, call.params["actorId"])
    return wire.json_response({
        "id": actor.id,
        "userId": actor.user_id,
        "name": actor.name,
        "username": actor.username,
        "isPublic": False,
        "createdAt": iso(actor.created_at),
        "modifiedAt": iso(actor.modified_at),
        "stats": {},
        "versions": [],  # no source is kept here: `satchel run` runs what it is given
        "defaultRunOptions": {"build": "latest"},
    })  # fmt: skip


async def get_run(call: Call) -> Response:
    # The last run's GET too: the clients' last_run().wait_for_finish() sends waitForFinish there.
    return await _answer(call, await _finished(call, await run_for(call)))


async def update_run(call: Call) -> Response:
    body = await read_json_object(call.request)  # read (and refused) before the run is looked up
    row = await call.services.runs.update(call.caller, await _run_id(call), body)
    return await _answer(call, row)


async def abort_run(call: Call) -> Response:
    row = await call.services.runs.abort(call.caller, await _run_id(call), gracefully=call.flag("gracefully"))
    return await _answer(call, row)


async def delete_run(call: Call) -> Response:
    await call.services.runs.delete(call.caller, await _run_id(call))
    return Response(status_code=204)


async def charge_run(call: Call) -> Response:
    # The Python client's last_run().charge() sends no `status` or `origin`: it charges the very last run.
    body = await read_json_object(call.request)
    await call.services.runs.charge(
        call.caller,
        await _run_id(call),
        body.get("eventName"),
        body.get("count"),
        call.header(b"idempotency-key"),
    )
    return Response(status_code=201)


async def get_log(call: Call) -> Response:
    """The run's log as text; with `stream`, a run that `satchel run` drives is followed: the answer stays
    open, sending what is added, until the run has finished. A run nobody drives has no command to write to
    its log, so its log is sent as it is. Terminal escapes (colors) are left out unless `raw`."""
    run = await run_for(call)
    raw = call.flag("raw")
    headers = {"cache-control": "no-store", **wire.UNTRUSTED}  # what the command printed: a page's HTML, say
    if call.flag("download"):
        headers["content-disposition"] = f'attachment; filename="{run.id}.log"'
    if call.flag("stream") and run.status not in FINISHED and driven(run):
        return StreamingResponse(_following(call, run, raw=raw), media_type=LOG_TYPE, headers=headers)
    text = await call.services.runs.log(run)
    return Response(text if raw else without_escapes(text), media_type=LOG_TYPE, headers=headers)


async def _following(call: Call, run: RunRow, *, raw: bool) -> AsyncIterator[bytes]:
    """The log as it grows, to the end its run left, or until nothing was added for `log_follow_idle_seconds`
    (a run whose `satchel run` was killed outright stays RUNNING)."""
    runs, sent = call.services.runs, 0
    idle_until = now_ms() + call.services.settings.log_follow_idle_seconds * 1000
    while True:
        finished = run.status in FINISHED  # read before the log, so nothing added before the end is missed
        text = await runs.log(run, sent)
        if text:
            sent += len(text)
            idle_until = now_ms() + call.services.settings.log_follow_idle_seconds * 1000
            yield text if raw else without_escapes(text)
        if finished or now_ms() >= idle_until:
            return
        with contextlib.suppress(TimeoutError):  # the server stopping ends the answer: nobody waits for it
            await asyncio.wait_for(call.services.stopping.wait(), LOG_STEP_SECONDS)
            return
        try:
            run = await runs.get(call.caller, run.id)
        except NotFound:  # deleted meanwhile: it has finished
            return


async def append_log(call: Call) -> Response:
    """Satchel's own: add the body (text as the command printed it) to the end of the run's log."""
    text = await read_decoded(call.request, MAX_LOG_APPEND, "log text")
    await call.services.runs.append_log(call.caller, await _run_id(call), text)
    return Response(status_code=204)


async def list_runs(call: Call) -> Response:
    return await _list(call, None)


async def list_actor_runs(call: Call) -> Response:
    return await _list(call, call.params["actorId"])


async def _list(call: Call, actor_ref: str | None) -> Response:
    page = await call.services.runs.page(
        call.caller,
        actor_ref,
        offset=call.number("offset", 0),
        limit=call.number("limit", 1000),
        desc=call.flag("desc"),
        status=call.text("status"),
        origin=call.text("origin"),
        started_after=call.text("startedAfter"),
        started_before=call.text("startedBefore"),
    )
    return await wire.page_response(lambda: run_page(page), len(page.items))


async def _last(call: Call) -> RunRow:
    """The run the last-run GET finds: `{actorId}`'s run that started last, with `status` and `origin`."""
    return await call.services.runs.last(
        call.caller, call.params["actorId"], status=call.text("status"), origin=call.text("origin")
    )


async def run_for(call: Call) -> RunRow:
    """The run a route names: `{runId}`, or the last run of `{actorId}` (with `status`, `origin`)."""
    if "runId" in call.params:
        return await call.services.runs.get(call.caller, call.params["runId"], Need.READ)
    return await _last(call)


async def _run_id(call: Call) -> str:
    """The id of the run a route names, for a change the service checks the caller may make to it."""
    if "runId" in call.params:
        return call.params["runId"]
    return (await _last(call)).id
