"""The rules for datasets and their items: pushes, reads by offset, counts, statistics.

A dataset is a store of kind DATASET (ids, names, access, sharing and retention are the stores' rules, in
`self.stores`); what it holds is an append-only list of JSON objects, numbered from 0 in the order they came.

Pushes take one object or an array of objects, decoded from gzip, deflate or br, up to
`max_items_payload_bytes` decoded (the clients send up to 9 MiB: the SDK chunks at 9,436,240 bytes). Each
item is stored as compact JSON; `cleanItemCount` counts those with a field that is not hidden (`#...`). A
dataset whose schema has `fields` takes only items that match them (item_schema.py); a push with one that
does not is refused whole.

A read is a range of rows: `offset` rows skipped, at most `limit` taken (no limit, 0, or anything up to
999,999,999,999 means "all"; larger is clamped), newest first with `desc`. Its bounds come from the item count
read once at the start, so a read sees the rows that were there when it began, a page at a time by seq range.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from satchel.clock import now_ms
from satchel.errors import InvalidRequest, TooLarge
from satchel.service.access import Caller, Level, Need
from satchel.service.encoding import Decoder, normalize
from satchel.service.item_formats import is_clean
from satchel.service.signing import check_not_expired, read_storage_signature
from satchel.service.stores import Listing, StorePage, Stores
from satchel.service.validation import shown
from satchel.storage import Storage, StoreRow
from satchel.storage.rows import DatasetCounts, ItemBatch

# Raises SchemaInvalid (or a 400 saying why they cannot be judged) for items that fail a dataset's schema.
ItemCheck = Callable[[list[Any]], None]

UNLIMITED = 999_999_999_999  # what the clients send for "no limit", and what a read without one reports
PAGE_ROWS = 1000  # rows read from storage at a time
OFF_LOOP_BYTES = 256 * 1024  # pushes this large are parsed on a worker thread
CHECKS_AT_ONCE = 2  # pushes checked against a schema at once, per process (more wait their turn)
NOT_OBJECTS = "The body must be a JSON object or an array of JSON objects"


@dataclass(slots=True)
class DatasetView:
    store: StoreRow
    level: Level
    counts: DatasetCounts


@dataclass(slots=True)
class DatasetPage:
    page: StorePage
    counts: dict[int, DatasetCounts]


@dataclass(slots=True)
class ItemsRead:
    """A range of rows to read: what the pagination headers say, and the rows a page at a time."""

    store: StoreRow
    total: int  # rows in the dataset when the read began
    offset: int
    limit: int  # the limit used; UNLIMITED without one
    count: int  # rows in the range (before any filter or unwind)
    desc: bool
    pages: Callable[[], AsyncIterator[list[bytes]]]


class Datasets:
    def __init__(
        self, storage: Storage, stores: Stores, *, max_payload_bytes: int = 10 * 1024 * 1024
    ) -> None:
        self.storage = storage
        self.table = storage.datasets
        self.stores = stores
        self.usage = stores.usage
        self.max_payload_bytes = max_payload_bytes
        # Checks against schemas running at once on worker threads: one may take up to the check's limit, and
        # the threads are the process's few (readiness, large pages, SQLite housekeeping use them too).
        self._checks = asyncio.Semaphore(CHECKS_AT_ONCE)

    # --- the datasets

    async def get_or_create(self, caller: Caller, name: str | None, schema: Any) -> tuple[DatasetView, bool]:
        store, created = await self.stores.get_or_create(caller, name, schema, schema_rule=_check_fields)
        counts = DatasetCounts() if created else await self.table.counts(store.pk)
        return DatasetView(store, Level.OWNER, counts), created

    async def get(self, caller: Caller, ref: str) -> DatasetView:
        store, level = await self.stores.get(caller, ref)
        return DatasetView(store, level, await self.table.counts(store.pk))

    async def update(self, caller: Caller, ref: str, changes: dict[str, Any]) -> DatasetView:
        store = await self.stores.update(caller, ref, changes)
        return DatasetView(store, Level.OWNER, await self.table.counts(store.pk))

    async def delete(self, caller: Caller, ref: str) -> None:
        await self.stores.delete(caller, ref)

    async def page(self, caller: Caller, listing: Listing) -> DatasetPage:
        page = await self.stores.page(caller, listing)
        counts = await self.table.counts_of([store.pk for store, _ in page.items])
        return DatasetPage(page, counts)

    async def statistics(self, caller: Caller, ref: str) -> dict[str, Any]:
        """Field statistics are not computed: `fieldStatistics` is always null (the clients accept that)."""
        await self.stores.resolve(caller, ref, Need.READ, cached=True)
        return {"fieldStatistics": None}

    # --- items

    async def push(
        self,
        caller: Caller,
        ref: str,
        *,
        chunks: AsyncIterator[bytes],
        content_encoding: str | None,
        declared_size: int | None = None,
    ) -> StoreRow:
        encoding = normalize(content_encoding)
        store, _ = await self.stores.resolve(caller, ref, Need.WRITE, cached=True)
        raw = await self._read_payload(chunks, encoding, declared_size)
        check = _check_for(store.schema)
        # A push checked against a schema always is: the check costs some ten times the parse (60 us an item
        # here), and its patterns may take up to the check's time limit, which the loop must not wait out.
        if check is not None:
            async with self._checks:
                batch = await asyncio.to_thread(parse_items, raw, check)
        elif len(raw) > OFF_LOOP_BYTES:
            batch = await asyncio.to_thread(parse_items, raw, None)
        else:
            batch = parse_items(raw, None)
        if batch.items:
            await self.table.append(store.pk, batch, now=now_ms())
        return store

    async def _read_payload(
        self, chunks: AsyncIterator[bytes], encoding: str | None, declared_size: int | None
    ) -> bytes:
        """The body decoded, refused (413) as soon as it passes the limit, sent or decoded."""
        limit = self.max_payload_bytes
        if declared_size is not None and declared_size > limit:
            raise _too_large(limit)
        decoder = Decoder(encoding) if encoding else None
        parts: list[bytes] = []
        sent = size = 0
        async for chunk in chunks:
            sent += len(chunk)
            if sent > limit:
                raise _too_large(limit)
            # Checked piece by piece: one chunk of a few KiB may decode to gigabytes.
            for piece in decoder.feed(chunk) if decoder else (chunk,):
                size += len(piece)
                if size > limit:
                    raise _too_large(limit)
                parts.append(piece)
        for piece in decoder.finish() if decoder else ():
            size += len(piece)
            if size > limit:
                raise _too_large(limit)
            parts.append(piece)
        return b"".join(parts)

    async def read(
        self,
        caller: Caller,
        ref: str,
        *,
        offset: int,
        limit: int | None,
        desc: bool,
        signature: str | None = None,
    ) -> ItemsRead:
        store, _ = await self.stores.resolve(caller, ref, Need.READ, cached=True, signed=_signed(signature))
        counts = await self.table.counts(store.pk)
        self.usage.note(store.pk, now=now_ms(), reads=1)
        limit = UNLIMITED if not limit else min(limit, UNLIMITED)
        total = counts.item_count
        count = min(limit, max(0, total - offset))
        # The range of seqs: the `count` rows after `offset` from the start, or from the end with desc.
        first = total - offset - count if desc else offset
        end = first + count
        table = self.table

        async def pages() -> AsyncIterator[list[bytes]]:
            if desc:
                for high in range(end, first, -PAGE_ROWS):
                    yield await table.items(store.pk, max(first, high - PAGE_ROWS), high, desc=True)
            else:
                for low in range(first, end, PAGE_ROWS):
                    yield await table.items(store.pk, low, min(end, low + PAGE_ROWS), desc=False)

        return ItemsRead(store, total, offset, limit, count, desc, pages)


def view_transformation(store: StoreRow, view: str) -> dict[str, tuple[str, ...]]:
    """The fields, omit, unwind and flatten lists of a view of the dataset's schema (`views.{view}.
    transformation`), for a read that names the view; a view the schema lacks is refused."""
    schema = orjson.loads(store.schema) if store.schema else {}
    views = schema.get("views") if isinstance(schema, dict) else None
    found = views.get(view) if isinstance(views, dict) else None
    if not isinstance(found, dict):
        raise InvalidRequest(
            f"View {shown(view)} is not defined in the dataset's schema.", type="invalid-value"
        )
    transformation = found.get("transformation")
    if not isinstance(transformation, dict):
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for key in ("fields", "omit", "unwind", "flatten"):
        value = transformation.get(key)
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            out[key] = tuple(v.strip() for v in value if isinstance(v, str) and v.strip())
    return out


def parse_items(raw: bytes, check: ItemCheck | None = None) -> ItemBatch:
    """A push's body as the batch to append: each object as compact JSON, in order; with the dataset's item
    schema, only if every item matches it."""
    if not raw.strip():
        raise InvalidRequest(f"{NOT_OBJECTS}; it is empty.")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from exc
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise InvalidRequest(f"{NOT_OBJECTS}.")
    stored: list[bytes] = []
    clean = size = 0
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidRequest(f"{NOT_OBJECTS}; the item at position {position} is not an object.")
        try:
            data = orjson.dumps(item)
        except orjson.JSONEncodeError as exc:  # parsed, but nested past what the encoder writes (255 levels)
            raise InvalidRequest(
                f"The item at position {position} nests too deeply to be stored.", type="invalid-value"
            ) from exc
        # A copy of its exact size: orjson's result keeps the whole buffer it was written into (about 4 KiB
        # however short the item), so a 10 MiB push of small items held gigabytes until it was stored.
        stored.append(bytes(memoryview(data)))
        size += len(data)
        clean += is_clean(item)
    if check is not None:
        check(items)
    return ItemBatch(stored, clean, size)


# The item schema's module loads jsonschema (0.15 s): imported once a dataset with a schema is made or written
# to, rather than by every process that starts (each `satchel serve`, each management command).
def _check_fields(schema: dict[str, Any]) -> None:
    from satchel.service.item_schema import check_fields  # noqa: PLC0415 - see above

    check_fields(schema)


def _check_for(schema_text: str | None) -> ItemCheck | None:
    """The check of a push's items against the dataset's schema; None when any object goes."""
    if schema_text is None:
        return None
    from satchel.service.item_schema import check_items, validator_for  # noqa: PLC0415 - see above

    rules = validator_for(schema_text)
    return None if rules is None else functools.partial(check_items, rules)


def _too_large(limit: int) -> TooLarge:
    # Made where it is raised, never kept in a local: an exception held by the frame it is raised from makes a
    # cycle (exception, traceback, frame) that keeps the decoded body with it until the garbage collector
    # runs, 10 MiB for each refused push (twenty gzip bombs grew the server by 300 MiB).
    return TooLarge(
        f"The items are larger than the limit of {limit} bytes (decoded); push them in smaller batches.",
        type="request-too-large",
    )


def _signed(signature: str | None) -> Callable[[StoreRow], bool] | None:
    """An items URL's signature (the storage form, over the dataset's id) grants reading its items."""
    if not signature:
        return None

    def check(store: StoreRow) -> bool:
        expires_at = read_storage_signature(store.url_signing_secret_key, store.id, signature)
        if expires_at is None:
            return False
        check_not_expired(expires_at)
        return True

    return check
