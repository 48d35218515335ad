"""Console pages for runs: the signed-in user's runs, and one run with its status, its storages and its log.

A run is the record of a command `satchel run` started (service/runs.py); its page links to its default
key-value store, dataset and request queue, shows the end of its log (the whole log is a link), and lets its
owner abort it while it runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from satchel.console.forms import PREFIX, redirect, whole
from satchel.console.records import RAW_HEADERS
from satchel.console.stores import pager
from satchel.errors import InvalidRequest, NotFound
from satchel.service.access import Caller, Level
from satchel.service.runs import STATUSES, driven, run_level, without_escapes
from satchel.storage.rows import FINISHED, RunStatus

if TYPE_CHECKING:
    from satchel.console.app import Console

RUNS = f"{PREFIX}/runs"
RUNS_PER_PAGE = 50
LOG_TAIL_BYTES = 64 * 1024  # what the run's page shows of its log: the end, where a crawl says how it went


async def _actor_names(console: Console, caller: Caller, act_ids: Iterable[str]) -> dict[str, str]:
    """The names of the caller's Actors among these ids; an Actor of someone else's run is left out."""
    names: dict[str, str] = {}
    for act_id in dict.fromkeys(act_ids):
        try:
            names[act_id] = (await console.services.runs.actor(caller, act_id)).name
        except NotFound:
            continue
    return names


async def runs(console: Console, request: Request, caller: Caller) -> Response:
    query = request.query_params
    offset = whole(query.get("offset"))
    status = query.get("status") or ""
    if status and status not in STATUSES:
        raise InvalidRequest(f"The status must be one of {', '.join(STATUSES)}.")
    page = await console.services.runs.page(
        caller, None, offset=offset, limit=RUNS_PER_PAGE, desc=True, status=status or None
    )
    previous, next_page = pager(offset, RUNS_PER_PAGE, page.total)
    return console.render(
        request,
        "runs.html",
        caller,
        page=page,
        status_filter=status,
        statuses=STATUSES,
        query={"status": status} if status else {},
        actors=await _actor_names(console, caller, (run.act_id for run in page.items)),
        previous=previous,
        next=next_page,
    )


async def run(console: Console, request: Request, caller: Caller) -> Response:
    row = await console.services.runs.get(caller, request.path_params["run"])
    charged = await console.services.runs.charged_event_counts(row)
    actors = await _actor_names(console, caller, [row.act_id])
    duration = (row.finished_at - row.started_at) if row.finished_at is not None else None
    end, log_size = await console.services.runs.log_end(row, LOG_TAIL_BYTES)
    tail = _from_a_whole_line(end, cut=len(end) < log_size)
    return console.render(
        request,
        "run.html",
        caller,
        run=row,
        actor=actors.get(row.act_id),
        owner=run_level(caller, row) >= Level.OWNER,
        running=row.status not in FINISHED,
        driven=driven(row),
        duration=None if duration is None else max(duration, 0) / 1000,
        charged=charged,
        api_url=f"{console.services.settings.base_url}/v2/actor-runs/{row.id}",
        log_size=log_size,
        log_cut=len(tail) < log_size,
        tail_size=len(tail),
        log_tail=_shown(tail),
    )


async def log(console: Console, request: Request, caller: Caller) -> Response:
    """The run's whole log, as text, for the browser to show or save."""
    row = await console.services.runs.get(caller, request.path_params["run"])
    text = await console.services.runs.log(row)
    # What the command printed (a crawled page's HTML, say), on the Console's origin: never sniffed into
    # a page, and sandboxed should a browser render it anyway, as record bodies and item exports are.
    headers = {**RAW_HEADERS, "content-disposition": f'inline; filename="{row.id}.log"'}
    return Response(text, media_type="text/plain; charset=utf-8", headers=headers)


def _from_a_whole_line(end: bytes, *, cut: bool) -> bytes:
    """The end of the log the page shows: from its first whole line, when it was cut from a longer log."""
    if not cut:
        return end
    start = end.find(b"\n") + 1
    return end[start:] if 0 < start < len(end) else end


def _shown(text: bytes) -> str:
    """Log text for the page: decoded (a character the cut split, or bytes that are not UTF-8, shown as
    replacement marks) and without terminal escapes."""
    return without_escapes(text).decode("utf-8", "replace")


async def abort(console: Console, request: Request, caller: Caller) -> Response:
    # Gracefully: a run `satchel run` drives gets the time to end by itself; others are ABORTED at once.
    before = await console.services.runs.get(caller, request.path_params["run"])
    row = await console.services.runs.abort(caller, before.id, gracefully=True)
    page = f"{RUNS}/{row.id}"
    if before.status in FINISHED:  # ended while the page was open: an abort changes nothing
        return redirect(page, "finished")
    if row.status == RunStatus.ABORTING:
        return redirect(page, "aborting")
    # A run `satchel run` drives has its command stopped; any other only changes its status.
    return redirect(page, "stopped" if driven(row) else "aborted")
