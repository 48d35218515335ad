"""A store's Records tab: its keys with content type, size and modified time, paged, with a prefix filter
and a preview of the record chosen beside them (or, when it is not there, a note saying so in its place).

The keys are read a window at a time (one listing of up to WINDOW keys in key order, as the API lists them):
a page is a slice of the window, so the total is exact for up to WINDOW keys with the prefix, and "more than"
past it. Past the window, Next goes on from its last key (the API's exclusiveStartKey). The API has no listing
backwards, so the links carry where the windows before began (`back`, keys joined by commas, which no key
holds): Previous from a window's first page is the last page of the one before, for up to TRAIL windows back,
and the first page past them. Only the page's keys have their heads read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from satchel.console.forms import whole
from satchel.console.records import Preview, preview_of
from satchel.errors import NotFound
from satchel.service.access import Caller, Level
from satchel.service.validation import KEY_RE
from satchel.storage import RecordHead, StoreRow

if TYPE_CHECKING:
    from satchel.console.app import Console

WINDOW = 1000  # the service's largest page of keys
PER_PAGE = 50
TRAIL = 20  # windows a link remembers the start of, for Previous (a few KiB of keys at most)


@dataclass(slots=True)
class Range:
    first: int  # 1-based, 0 when empty
    last: int
    total: int
    exact: bool  # False: at least `total`

    @property
    def label(self) -> str:
        of = f"{self.total}" if self.exact else f"more than {self.total}"
        return f"{self.first}\u2013{self.last} of {of}" if self.last else f"0 of {of}"


async def context(
    console: Console, request: Request, caller: Caller, ref: str, *, store: StoreRow, have: Level
) -> dict[str, Any]:
    query = request.query_params
    prefix = query.get("prefix") or ""
    after = query.get("after") or None
    skipped = whole(query.get("skipped")) if after else 0  # keys before the window, as the link said
    offset = whole(query.get("offset"))
    # Where each window before this one began ("" for the first), as the links said; nothing if not keys.
    back = (query.get("back") or "").split(",") if after and query.get("back") is not None else []
    if len(back) > TRAIL or not all(key == "" or KEY_RE.fullmatch(key) for key in back):
        back = []
    keys = await console.services.records.list_keys(
        caller, ref, exclusive_start_key=after, limit=WINDOW, prefix=prefix, collection=None
    )
    window = keys.items
    past_the_end = offset >= len(window) and offset > 0  # an old link, or a list that shrank since
    shown = window[offset : offset + PER_PAGE]
    heads: list[RecordHead] = []
    for item in shown:
        try:
            heads.append(await console.services.records.head(caller, ref, item.key))
        except NotFound:  # deleted since it was listed
            continue
    total = skipped + len(window)
    place = Range(
        skipped + offset + 1 if shown else 0,
        skipped + offset + len(shown) if shown else 0,
        total,
        not keys.is_truncated,
    )
    # Each link keeps the prefix; within the window it moves the offset, past it the window.
    state = {"prefix": prefix} if prefix else {}
    window_state = _window(state, after, skipped, back)
    previous = next_page = None
    stepped_back = False
    if past_the_end:
        previous = dict(window_state)  # the window's first page
    elif offset > 0:
        previous = {**window_state, "offset": str(max(offset - PER_PAGE, 0))}
    elif after and back and skipped >= WINDOW:
        # The last page of the window before, which was whole (a listing goes on only past a whole one).
        before = _window(state, back[-1] or None, skipped - WINDOW, back[:-1])
        previous = {**before, "offset": str(WINDOW - PER_PAGE)}
        stepped_back = True
    elif after:
        previous = dict(state)  # the first page
    if past_the_end:
        pass  # only the way back: the window's pages are before this one
    elif offset + PER_PAGE < len(window):
        next_page = {**window_state, "offset": str(offset + PER_PAGE)}
    elif keys.is_truncated and window:
        trail = [*back, after or ""][-TRAIL:]
        next_page = _window(state, window[-1].key, total, trail)
    here = {**window_state, "offset": str(offset)} if offset else window_state
    chosen = query.get("key")
    preview: Preview | None = None
    missing = False  # the record chosen is not there (deleted since the link was made): the list says so
    if chosen:
        try:
            preview = await preview_of(console, caller, ref, chosen, store=store, have=have)
        except NotFound:
            missing = True
    return {
        "heads": heads,
        "prefix": prefix,
        "range": place,
        "here": here,
        "previous": previous,
        "next": next_page,
        "previous_label": "Previous" if (offset > 0 and not past_the_end) or stepped_back else "First page",
        "past_the_end": past_the_end,
        "chosen": chosen,
        "preview": preview,
        "missing": missing,
    }


def _window(state: dict[str, str], after: str | None, skipped: int, back: list[str]) -> dict[str, str]:
    """The query of a window's first page: the list's state, where the window begins, and the trail back."""
    if after is None:
        return dict(state)
    window = {**state, "after": after, "skipped": str(skipped)}
    if back:
        window["back"] = ",".join(back)
    return window
