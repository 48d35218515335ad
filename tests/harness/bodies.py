"""Record bodies for load: unique, partly compressible, of mixed sizes, some sent gzip-encoded."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB

# (size, weight): tiny and inline bodies, both sides of the 128 KiB inline limit, and big blobs up to 20 MiB.
SIZES: tuple[tuple[int, int], ...] = (
    (10, 12),
    (1 * KIB, 12),
    (40 * KIB, 10),
    (128 * KIB, 6),
    (128 * KIB + 1, 6),
    (600 * KIB, 8),
    (2 * MIB, 5),
    (6 * MIB, 2),
    (20 * MIB, 1),
)
_serial = itertools.count()


@dataclass(frozen=True, slots=True)
class Value:
    """A record value as the client knows it: digests of the bytes sent and of what they decode to."""

    raw_sha: str
    stored_sha: str
    raw_size: int
    stored_size: int
    encoding: str | None  # None: sent as is

    @property
    def label(self) -> str:
        return f"{self.raw_sha[:12]}({self.raw_size}{'/gz' if self.encoding else ''})"


@dataclass(frozen=True, slots=True)
class Upload:
    value: Value
    content: bytes
    headers: dict[str, str]


def pick_size(rng: random.Random, *, max_size: int = 20 * MIB) -> int:
    sizes = [(s, w) for s, w in SIZES if s <= max_size]
    return rng.choices([s for s, _ in sizes], weights=[w for _, w in sizes])[0]


def body(rng: random.Random, size: int) -> bytes:
    """size bytes, never the same twice: a serial number, then half random and half repeated bytes."""
    head = f"{next(_serial)}:{rng.getrandbits(64):016x}:".encode()[:size]
    rest = size - len(head)
    noise = rng.randbytes(rest // 2)
    return head + noise + b"satchel-" * ((rest - len(noise)) // 8) + b"s" * ((rest - len(noise)) % 8)


def upload(rng: random.Random, size: int, *, gzip_share: float = 0.3) -> Upload:
    raw = body(rng, size)
    raw_sha = hashlib.sha256(raw).hexdigest()
    headers = {"content-type": "application/octet-stream"}
    if rng.random() < gzip_share:
        stored = gzip.compress(raw, compresslevel=1)
        headers["content-encoding"] = "gzip"
        value = Value(raw_sha, hashlib.sha256(stored).hexdigest(), len(raw), len(stored), "gzip")
        return Upload(value, stored, headers)
    return Upload(Value(raw_sha, raw_sha, len(raw), len(raw), None), raw, headers)


def chunks(total: int, seed: int = 1, chunk: int = MIB) -> Iterator[bytes]:
    """`total` bytes of a pattern made from `seed`, a chunk at a time: a large body never held whole."""
    block = hashlib.sha256(str(seed).encode()).digest() * (chunk // 32)
    sent = 0
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        sent += len(piece)
        yield piece
