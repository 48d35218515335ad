"""The rules for records: key checks, content types, encodings, size limits, listing pages and collections.

A content type is sent back as a header on every read, so one rule decides what may be stored, whichever way
a record comes in (API, Console, import): at most 255 characters of Latin-1 without control characters, the
bytes an HTTP header can carry. Rows stored before the rule (a type with characters past Latin-1 once made
every read of its record a 500) are read with application/octet-stream instead.

A ZIP or an export reads a store a keyset page at a time (each page as the reading reaches it, as a client
paging through the keys would) and sends each record's body some time after its page was listed. A blob
outlives its record's replacement by `blob_grace_seconds` only, so a slow reader may find it gone: the record
was listed, so the reading fails (RecordChanged) rather than leave it out. A listed blob is never rewritten
(a new value gets a new blob), so a body that can still be read whole is the listed one; its size is checked
all the same.

Every record has a strong ETag: the SHA-256 of its body as stored, hashed by the engine as the body streams
in. A record written before ETags existed has none in its row; the first read that needs it (GET, HEAD, a
conditional write) hashes the body once and stores the result, so later reads find it in the row. A
conditional write (If-Match, If-None-Match) is checked first here, to refuse without reading a body that
would be thrown away, and then again by the engine in the transaction that commits: only that second check
makes it safe against concurrent writers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson

from satchel.clock import iso, now_ms
from satchel.errors import Forbidden, InvalidRequest, NotFound, SatchelError, TooLarge
from satchel.service.access import Caller, Level, Need
from satchel.service.encoding import CheckedUpload, normalize
from satchel.service.record_cache import RecordCache
from satchel.service.signing import check_record_signature, read_storage_signature, signs_like_a_listing
from satchel.service.stores import Stores
from satchel.service.usage import Usage
from satchel.service.validation import check_key, shown
from satchel.storage import KeyItem, RecordHead, RecordRead, RecordTable, StoreRow
from satchel.storage.blobs.base import BlobMissing
from satchel.storage.conditions import WriteCondition

MAX_KEYS_PAGE = 1000
RECORD_NOT_FOUND = "Record was not found."
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_CONTENT_TYPE = 255
# Latin-1 less its control characters (C0, DEL, C1): what a header value carries byte for byte.
CONTENT_TYPE_RE = re.compile("[\x20-\x7e\xa0-\xff]+")


class RecordChanged(SatchelError):
    """A record listed for a ZIP or an export was replaced or deleted before its body could be read."""

    type = "record-changed"
    status = 409


def check_content_type(value: str | None) -> str:
    """The content type a record is stored with: what was given, trimmed, or application/octet-stream."""
    content_type = (value or "").strip() or DEFAULT_CONTENT_TYPE
    if len(content_type) > MAX_CONTENT_TYPE or CONTENT_TYPE_RE.fullmatch(content_type) is None:
        raise InvalidRequest(
            f"Content-Type must be at most {MAX_CONTENT_TYPE} characters of Latin-1, without control"
            " characters."
        )
    return content_type


def sendable(head: RecordHead) -> RecordHead:
    """The head as readers get it: a content type stored before the rule, that no header can carry, is sent as
    application/octet-stream (the body is still whole; only its type is not known)."""
    content_type = head.content_type
    if content_type and content_type.isascii() and content_type.isprintable():  # the usual case, at C speed
        return head
    if CONTENT_TYPE_RE.fullmatch(content_type) is not None:
        return head
    return dataclasses.replace(head, content_type=DEFAULT_CONTENT_TYPE)


@dataclass(slots=True)
class KeyPage:
    store: StoreRow
    level: Level  # the caller's, which decides whether item URLs carry signatures
    items: list[KeyItem]
    limit: int
    exclusive_start_key: str | None
    is_truncated: bool

    @property
    def next_exclusive_start_key(self) -> str | None:
        return self.items[-1].key if self.is_truncated and self.items else None


class Records:
    def __init__(
        self,
        table: RecordTable,
        stores: Stores,
        usage: Usage,
        cache: RecordCache,
        *,
        max_record_bytes: int,
        max_decoded_bytes: int,
    ) -> None:
        self.table = table
        self.stores = stores
        self.usage = usage
        self.cache = cache
        self.max_record_bytes = max_record_bytes
        self.max_decoded_bytes = max_decoded_bytes

    async def get(
        self, caller: Caller, ref: str, key: str, *, signature: str | None = None
    ) -> tuple[StoreRow, RecordRead]:
        check_key(key)
        signed = _record_signature(key, signature)
        store, _ = await self.stores.resolve(caller, ref, Need.READ, cached=True, signed=signed)
        record = self.cache.get(store, key)
        if record is None:
            stamp = self.cache.stamp(store, key)
            record = await self.table.read(store.pk, key)
            if record is None:
                raise NotFound(RECORD_NOT_FOUND)
            if record.head.etag is None:
                record = dataclasses.replace(record, head=await self._fill_etag(store.pk, record))
            head = sendable(record.head)
            if head is not record.head:
                record = dataclasses.replace(record, head=head)
            self.cache.keep(store, key, stamp, record)
        self.usage.note(store.pk, now=now_ms(), reads=1)
        return store, record

    async def head(self, caller: Caller, ref: str, key: str, *, signature: str | None = None) -> RecordHead:
        check_key(key)
        signed = _record_signature(key, signature)
        store, _ = await self.stores.resolve(caller, ref, Need.READ, cached=True, signed=signed)
        cached = self.cache.get(store, key)
        if cached is not None:
            self.usage.note(store.pk, now=now_ms())
            return cached.head
        head = await self._head(store.pk, key)
        if head is None:
            raise NotFound(RECORD_NOT_FOUND)
        self.usage.note(store.pk, now=now_ms())
        return sendable(head)

    async def _head(self, store_pk: int, key: str) -> RecordHead | None:
        """The record's head, with its ETag filled if it was written before ETags."""
        head = await self.table.head(store_pk, key)
        if head is None or head.etag is not None:
            return head
        record = await self.table.read(store_pk, key)
        return None if record is None else await self._fill_etag(store_pk, record)

    async def _fill_etag(self, store_pk: int, record: RecordRead) -> RecordHead:
        """Hash the body of a record written before ETags, and store the ETag; the head with it."""
        sha = hashlib.sha256()
        try:
            async for chunk in record.stream():
                sha.update(chunk)
        except BlobMissing as exc:  # replaced or deleted since it was looked up, past the grace period
            raise NotFound(RECORD_NOT_FOUND) from exc
        etag = sha.hexdigest()
        await self.table.fill_etag(store_pk, record.head.key, etag)
        return dataclasses.replace(record.head, etag=etag)

    async def put(
        self,
        caller: Caller,
        ref: str,
        key: str,
        *,
        content_type: str | None,
        content_encoding: str | None,
        chunks: AsyncIterator[bytes],
        declared_size: int | None = None,
        condition: WriteCondition | None = None,
    ) -> tuple[StoreRow, RecordHead]:
        """Store a record; with a condition, only if the current record meets it (else PreconditionFailed)."""
        check_key(key)
        encoding = normalize(content_encoding)
        store, _ = await self.stores.resolve(caller, ref, Need.WRITE, cached=True)
        if signs_like_a_listing(key, store.id):
            raise InvalidRequest(
                f"Record key {key!r} is not taken: a link to it would be signed as this store's list of keys"
                " (`0.{expiresAtMs}.{storeId}`), and open every record.",
                type="invalid-record-key",
            )
        if declared_size is not None and declared_size > self.max_record_bytes:
            # Refused before reading: a client that declares more than the limit may be waiting to send it
            # (Expect: 100-continue) or may never send it at all; either way the answer is known now.
            raise TooLarge(f"The record is larger than the limit of {self.max_record_bytes} bytes.")
        content_type = check_content_type(content_type)
        if condition is not None:
            await self._precheck(store.pk, key, condition)
        body = CheckedUpload(chunks, encoding, max_decoded=self.max_decoded_bytes)
        head = await self.table.write(
            store.pk,
            key,
            content_type=content_type,
            content_encoding=encoding,
            body=body,
            now=now_ms(),
            condition=condition,
        )
        return store, head

    async def delete(
        self, caller: Caller, ref: str, key: str, *, condition: WriteCondition | None = None
    ) -> None:
        check_key(key)
        store, _ = await self.stores.resolve(caller, ref, Need.WRITE, cached=True)
        if condition is not None:
            await self._precheck(store.pk, key, condition)
        # Deleting what is not there is not an error: the caller's intent already holds.
        await self.table.delete(store.pk, key, now=now_ms(), condition=condition)

    async def _precheck(self, store_pk: int, key: str, condition: WriteCondition) -> None:
        """Refuse early a write whose condition already fails (the engine checks again as it commits); this
        also gives a record written before ETags its ETag, which the engine's check compares with."""
        head = await self._head(store_pk, key)
        condition.check(head.etag if head else None, exists=head is not None)

    async def list_keys(
        self,
        caller: Caller,
        ref: str,
        *,
        exclusive_start_key: str | None,
        limit: int,
        prefix: str | None,
        collection: str | None,
        signature: str | None = None,
    ) -> KeyPage:
        signed = _storage_signature(signature)
        store, have = await self.stores.resolve(caller, ref, Need.READ, cached=True, signed=signed)
        limit = min(limit, MAX_KEYS_PAGE) if limit > 0 else MAX_KEYS_PAGE  # 0: a full page
        prefix, exact = _narrow(store, prefix or "", collection)
        items = await self.table.keys(
            store.pk, prefix=prefix, exclusive_start_key=exclusive_start_key, limit=limit + 1
        )
        self.usage.note(store.pk, now=now_ms(), lists=1)
        if exact is not None:
            items = [i for i in items if i.key == exact]
        truncated = len(items) > limit
        return KeyPage(store, have, items[:limit], limit, exclusive_start_key, truncated)

    async def all_records(
        self,
        caller: Caller,
        ref: str,
        *,
        prefix: str | None,
        collection: str | None,
        signature: str | None = None,
    ) -> tuple[StoreRow, AsyncIterator[RecordRead]]:
        """Every record of the store (with the prefix or in the collection), in key order, each exactly as it
        was listed: a body that cannot be read whole any more raises RecordChanged as it is read."""
        signed = _storage_signature(signature)
        store, _ = await self.stores.resolve(caller, ref, Need.READ, cached=True, signed=signed)
        prefix, exact = _narrow(store, prefix or "", collection)

        async def records() -> AsyncIterator[RecordRead]:
            async for record in self.table.iterate(store.pk, prefix=prefix):
                if exact is None or record.head.key == exact:
                    yield _as_listed(record)

        return store, records()


def _as_listed(record: RecordRead) -> RecordRead:
    """The record with a body that is the listed one or fails: a blob gone (replaced or deleted past the grace
    period) or not the listed size raises RecordChanged instead of ending early or being skipped."""
    head = sendable(record.head)
    if record.opener is None:  # inline: the body came with the listed row
        return record if head is record.head else dataclasses.replace(record, head=head)
    opener = record.opener

    async def exact(start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        size = 0
        try:
            async for chunk in opener(start, end):
                size += len(chunk)
                yield chunk
        except BlobMissing as exc:
            raise RecordChanged(
                f"Record {head.key!r} was replaced or deleted while it was being read; read the store again."
            ) from exc
        if size != (head.size if end is None else end) - start:
            raise RecordChanged(
                f"Record {head.key!r} is not the size it was listed with ({head.size} bytes)."
            )

    # No local file: every reader goes through the check.
    return RecordRead(head, None, exact)


def _record_signature(key: str, signature: str | None) -> Callable[[StoreRow], bool] | None:
    """A record URL's signature grants reading that one record."""
    if not signature:
        return None
    return lambda store: check_record_signature(store.url_signing_secret_key, key, signature)


def _storage_signature(signature: str | None) -> Callable[[StoreRow], bool] | None:
    """A keys or records URL's signature grants listing that store until it expires (0: never)."""
    if not signature:
        return None

    def check(store: StoreRow) -> bool:
        expires_at = read_storage_signature(store.url_signing_secret_key, store.id, signature)
        if expires_at is not None and 0 < expires_at <= now_ms():
            raise Forbidden(f"The signature expired at {iso(expires_at)}.", "invalid-signature")
        return expires_at is not None

    return check


def _narrow(store: StoreRow, prefix: str, collection: str | None) -> tuple[str, str | None]:
    """Combine a prefix with a schema collection (one `key` or a `keyPrefix`) into (prefix, exact key)."""
    if not collection:
        return prefix, None
    collections = (orjson.loads(store.schema) if store.schema else {}).get("collections") or {}
    spec = collections.get(collection) if isinstance(collections, dict) else None
    if not isinstance(spec, dict):
        raise InvalidRequest(
            f"Collection {shown(collection)} is not defined in the store's schema.", type="invalid-value"
        )
    key = spec.get("key")
    if isinstance(key, str):
        return (key, key) if key.startswith(prefix) else ("\uffff", None)
    key_prefix = spec.get("keyPrefix")
    if isinstance(key_prefix, str):
        # The narrower of the two prefixes, or nothing when they disagree.
        if key_prefix.startswith(prefix):
            return key_prefix, None
        return (prefix, None) if prefix.startswith(key_prefix) else ("\uffff", None)
    return prefix, None
