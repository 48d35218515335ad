"""Whether a blob store is the one a database's records keep their bodies in.

Nothing in the settings ties the two: a node or command run with the database's URL and no blob store (or
another bucket or prefix) would write large bodies where no server reads them, and read back "missing" for
every one. Two things tell:

- A mark: a random id the database keeps (its `deployment` table) and the blob store keeps beside the blobs
  (MARK_NAME), written when the two are first paired. The same mark on both: the right pair. Another one: the
  blob store is another deployment's.
- The bodies: records that name blobs are sampled and looked for; none found means the wrong store (or one
  that lost everything). This is all a database from before marks can be checked by, and it proves a blob
  store that lacks the mark right (a bucket copied for a restore or moved to a new name), which then takes it.

A fresh deployment has no large body to look for: only the mark tells its blob store from another, which is
why a database whose mark the blob store lacks, and that holds no large body, is refused.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

from satchel.clock import now_ms
from satchel.errors import SatchelError
from satchel.storage.base import RecordTable
from satchel.storage.blobs.base import BlobMissing, BlobStore
from satchel.storage.rows import DeploymentMark

SAMPLE = 3
# How long a node waits for the one that wrote a new mark to note the pair made: one small write to its blob
# store, which takes milliseconds. Past it, that node is taken for dead and the pair made without it.
PAIRING_WAIT_SECONDS = 10.0
PAIRING_POLL_SECONDS = 0.05
ASK_FOR_THE_RIGHT_ONE = "Give the --blob-store (or SATCHEL_BLOB_STORE) the servers use."


@dataclass(frozen=True, slots=True)
class Described:
    """How the refusals name the blob store ("the blob store s3://..."), and its mark ("the object ...")."""

    store: str
    mark: str


class Unpaired(SatchelError):
    """The blob store given is not the one the database's bodies are in."""


async def blobs_found(records: RecordTable, blobs: BlobStore) -> tuple[int, int]:
    """(blobs looked for, blobs found) among a few that records name; (0, 0) when none name a blob yet."""
    names = await records.some_blobs(SAMPLE)
    found = [name for name in names if await holds(blobs, name)]
    return len(names), len(found)


async def holds(blobs: BlobStore, name: str) -> bool:
    """Whether the blob store has the blob `name` (its first byte is read)."""
    try:
        async for _ in blobs.read(name, 0, 1):
            break
    except BlobMissing:
        return False
    return True


async def check(records: RecordTable, blobs: BlobStore, described: Described, *, pair: bool) -> None:
    """Refuse (Unpaired, saying what to do) a blob store that is not the database's. `pair`: for a node's
    start and the commands that write, which also pair the two where neither holds a mark yet, and give the
    database's mark to a blob store that its bodies prove right; a command that only reads writes nothing.

    Nodes that start together on a fresh database agree: the database keeps the first mark written (the
    others' inserts do nothing), and the node that wrote it writes it to its blob store, then notes the pair
    made. The others wait for that note before they look for the mark in theirs, so a node given another
    blob store is refused even then; if the note never comes (that node died), they make the pair instead.
    """
    sample = _Sample(records, blobs)
    kept = await records.mark()
    theirs = await blobs.mark()
    if kept is None and theirs is not None:
        kept = await records.mark()  # a node pairing the two meanwhile wrote the database first
    ours = False
    if kept is None:  # a new database, or one from before marks
        checked, found = await sample.taken()
        if checked and not found:
            raise Unpaired(_none_found(checked, described))
        if theirs is not None and not found:
            raise Unpaired(
                f"{_capital(described.store)} holds the deployment mark {theirs} of another database, "
                "and this database has none yet (nor a large body to look for there). Give this database "
                "a blob store of its own (another bucket, prefix or data dir), or the --database (or "
                f"SATCHEL_DATABASE) that one belongs to. Only if that database is gone for good, delete "
                f"{described.mark} from it and start again: the nodes of that database would be refused "
                "from then on."
            )
        if not pair:
            return
        # With bodies found in a blob store marked already, a database restored from before marks: its mark.
        offered = theirs or secrets.token_hex(16)
        kept = await records.claim_mark(offered, now_ms())
        ours = kept.mark == offered and not kept.paired
        if theirs is None and not ours:
            theirs = await blobs.mark()  # another node's mark, which it may have written there by now
    if theirs is None and pair and not kept.paired and not ours:
        kept = await _pairing_done(records, kept)
        if kept.paired:
            theirs = await blobs.mark()
    if theirs is None:
        checked, found = await sample.taken()
        if checked and not found:
            raise Unpaired(_none_found(checked, described))
        if kept.paired and not found:
            raise Unpaired(
                f"{_capital(described.store)} lacks this database's deployment mark {kept.mark}, and the "
                "database has no large body yet to look for there: it was paired with another blob store. "
                f"{ASK_FOR_THE_RIGHT_ONE} To move to this one, copy {described.mark} into it from the old "
                f"one (or write {kept.mark} there)."
            )
        # Not paired yet, or a copy of the paired blob store (its bodies are there): it takes the mark.
        if not pair:
            return
        await blobs.write_mark(kept.mark)
    elif theirs != kept.mark:
        raise Unpaired(
            f"{_capital(described.store)} belongs to another deployment: its mark ({described.mark}) is "
            f"{theirs}, and this database's is {kept.mark}. {ASK_FOR_THE_RIGHT_ONE}"
        )
    if pair and not kept.paired:
        await records.paired(now_ms())


async def _pairing_done(records: RecordTable, kept: DeploymentMark) -> DeploymentMark:
    """The mark once the node that wrote it has noted the pair made; as it is after PAIRING_WAIT_SECONDS
    without the note (that node died before it wrote the mark to its blob store)."""
    deadline = time.monotonic() + PAIRING_WAIT_SECONDS
    while not kept.paired and time.monotonic() < deadline:
        await asyncio.sleep(PAIRING_POLL_SECONDS)
        kept = await records.mark() or kept
    return kept


class _Sample:
    """blobs_found, taken once when first needed."""

    def __init__(self, records: RecordTable, blobs: BlobStore) -> None:
        self.records = records
        self.blobs = blobs
        self._taken: tuple[int, int] | None = None

    async def taken(self) -> tuple[int, int]:
        if self._taken is None:
            self._taken = await blobs_found(self.records, self.blobs)
        return self._taken


def _none_found(checked: int, described: Described) -> str:
    return (
        f"None of the {checked} large record bodies checked is in {described.store}: the database keeps its "
        f"large bodies elsewhere. {ASK_FOR_THE_RIGHT_ONE}"
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
