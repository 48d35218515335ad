"""Content-Encoding: which ones a record may carry, checking uploads as they stream, decoding for readers.

An upload is decoded as it arrives, without keeping the output, to refuse a body that lies about its encoding
and to cap what it expands to (a zip bomb of a few KiB can claim terabytes).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Iterator

import brotli

from satchel.errors import InvalidRequest, TooLarge, UnsupportedEncoding
from satchel.service.validation import shown
from satchel.storage import RecordRead

SUPPORTED = ("gzip", "deflate", "br")
ALIASES = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "br": "br"}
STEP = 256 * 1024  # most output one decoding step produces
# Decoded bytes an upload's chunk, or a stored body read back, may produce on the event loop; past them the
# rest is decoded in a thread, a step at a time. A few KiB can decode to gigabytes (a compression bomb),
# seconds of work that would hold every other request of the process back, and have its writes refused as
# though it had stopped.
ON_LOOP_BYTES = 4 * STEP


def normalize(header: str | None) -> str | None:
    """The stored encoding for a Content-Encoding header; None means identity."""
    value = (header or "").strip().lower()
    if value in ("", "identity"):
        return None
    found = ALIASES.get(value)
    if found is None:
        sent = shown(header or "")
        raise UnsupportedEncoding(
            f"Content-Encoding {sent} is not supported; use one of gzip, deflate, br or identity."
        )
    return found


class Decoder:
    """Incremental decoding of one body; output comes in pieces of at most STEP bytes."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._brotli = brotli.Decompressor() if encoding == "br" else None
        self._zlib: zlib._Decompress | None = None
        self._seen = False
        if encoding == "gzip":
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            if data:
                self._seen = True
            if self._brotli is not None:
                yield from self._feed_brotli(data)
            else:
                yield from self._feed_zlib(data)
        except (zlib.error, brotli.error) as exc:
            raise self._invalid() from exc

    def _feed_brotli(self, data: bytes) -> Iterator[bytes]:
        assert self._brotli is not None
        if self._brotli.is_finished():
            if data:
                raise self._invalid()
            return
        out = self._brotli.process(data, output_buffer_limit=STEP)
        if out:
            yield out
        while not self._brotli.can_accept_more_data():
            out = self._brotli.process(b"", output_buffer_limit=STEP)
            if not out:
                break
            yield out

    def _feed_zlib(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            if not data:
                return
            # HTTP's deflate is zlib-wrapped, but some senders use raw deflate; the header tells which.
            wrapped = len(data) >= 2 and (data[0] & 0x0F) == 8 and ((data[0] << 8) | data[1]) % 31 == 0
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        pending = data
        while pending:
            out = self._zlib.decompress(pending, STEP)
            if out:
                yield out
            pending = self._zlib.unconsumed_tail
            if self._zlib.eof:
                # Everything past the end is in unused_data. unconsumed_tail may still hold a stale copy of
                # it (when the end came on a call cut short by the output limit): adding it would double the
                # input with every gzip member, a few KiB growing without bound.
                rest = self._zlib.unused_data
                if not rest:
                    return
                if self.encoding != "gzip":
                    raise self._invalid()
                # A gzip body may hold several members one after another.
                self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
                pending = rest

    def finish(self) -> Iterator[bytes]:
        """Whatever output remains; raises if the body ended before its encoding did."""
        if not self._seen:
            return
        try:
            if self._brotli is not None:
                while not self._brotli.is_finished():
                    out = self._brotli.process(b"", output_buffer_limit=STEP)
                    if not out:
                        raise self._invalid()
                    yield out
            elif self._zlib is not None:
                while not self._zlib.eof:
                    out = self._zlib.decompress(self._zlib.unconsumed_tail, STEP)
                    if not out:
                        raise self._invalid()
                    yield out
        except (zlib.error, brotli.error) as exc:
            raise self._invalid() from exc

    def _invalid(self) -> InvalidRequest:
        return InvalidRequest(
            f"The body is not valid {self.encoding} data, though Content-Encoding says it is.",
            type="invalid-value",
        )


class CheckedUpload:
    """An upload's chunks as stored, decoded on the side to check them and count the decoded bytes."""

    def __init__(self, chunks: AsyncIterator[bytes], encoding: str | None, *, max_decoded: int) -> None:
        self._chunks = chunks
        self._decoder = Decoder(encoding) if encoding else None
        self._max = max_decoded
        self.raw_size = 0

    async def _check(self, pieces: Iterator[bytes]) -> None:
        """Decode one chunk and count it: its first ON_LOOP_BYTES on the loop, the rest in a thread."""
        async for piece in _steps(pieces, [ON_LOOP_BYTES]):
            self.raw_size += len(piece)
            if self.raw_size > self._max:
                raise TooLarge(f"The record decodes to more than the limit of {self._max} bytes.")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = False
        async for chunk in self._chunks:
            sent = sent or bool(chunk)
            if self._decoder is None:
                self.raw_size += len(chunk)
            else:
                await self._check(self._decoder.feed(chunk))
            yield chunk
        if self._decoder is not None:
            if not sent:
                # The Decoder takes no bytes as no body (a JSON payload may be absent), but a record is kept:
                # nothing is no gzip, deflate or br data, and such a record could never be decoded.
                encoding = self._decoder.encoding
                raise InvalidRequest(
                    f"The body is empty, which is not valid {encoding} data, though Content-Encoding says it "
                    "is; send an empty record without Content-Encoding.",
                    type="invalid-value",
                )
            await self._check(self._decoder.finish())


async def decode_stream(
    chunks: AsyncIterator[bytes], encoding: str, *, offload: bool
) -> AsyncIterator[bytes]:
    """Decode a stored body as it streams, a step of at most STEP output bytes at a time, so a large body
    neither stalls the event loop nor expands in memory: its first ON_LOOP_BYTES on the loop (none with
    `offload`), the rest in a thread. A body stored small can decode to gigabytes, and decoded on the loop
    for a client that had gone (whose sends no longer wait) it held the process for seconds."""
    decoder = Decoder(encoding)
    on_loop = [0 if offload else ON_LOOP_BYTES]  # output still to be decoded on the loop, for every step
    async for chunk in chunks:
        async for piece in _steps(decoder.feed(chunk), on_loop):
            yield piece
    async for piece in _steps(decoder.finish(), on_loop):
        yield piece


async def _steps(pieces: Iterator[bytes], on_loop: list[int]) -> AsyncIterator[bytes]:
    """The decoded pieces, each made on the loop while on_loop[0] (shared by the calls for one budget) lasts,
    then in a thread: each of those is a point where the stream can be cancelled."""
    while True:
        piece = next(pieces, None) if on_loop[0] > 0 else await asyncio.to_thread(_next, pieces)
        if piece is None:
            return
        on_loop[0] -= len(piece)
        yield piece


def _next(pieces: Iterator[bytes]) -> bytes | None:
    return next(pieces, None)


def plain_stream(record: RecordRead) -> AsyncIterator[bytes]:
    """A stored body as its bytes were before any Content-Encoding (a blob is opened by this call)."""
    chunks = record.stream()
    if record.head.content_encoding:
        return decode_stream(chunks, record.head.content_encoding, offload=record.inline is None)
    return chunks


async def read_prefix(record: RecordRead, limit: int) -> bytes:
    """Up to `limit` bytes of the decoded body, reading no further than needed."""
    parts: list[bytes] = []
    size = 0
    async for piece in plain_stream(record):
        parts.append(piece)
        size += len(piece)
        if size >= limit:
            break
    return b"".join(parts)[:limit]
