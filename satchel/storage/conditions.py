"""A conditional write's rule (If-Match / If-None-Match), which each engine checks in the transaction that
commits the record, so that it holds against writers on any node."""

from __future__ import annotations

from dataclasses import dataclass

from satchel.errors import SatchelError


class PreconditionFailed(SatchelError):
    """A conditional write or delete found the record not as its If-Match / If-None-Match required."""

    type = "precondition-failed"
    status = 412


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """What a record must be for a write or delete to go ahead, checked in the transaction that commits it.

    Entity tags are the bare hex digests (RecordHead.etag); "*" stands for any current record.
    """

    if_match: frozenset[str] | None = None  # strong comparison: the record exists with one of these
    if_none_match: frozenset[str] | None = None  # the record is absent, or has none of these

    def holds(self, etag: str | None, *, exists: bool) -> bool:
        """Whether a record that exists (or not) with this ETag meets the condition. A record without an
        ETag yet (written before ETags) matches only "*": the service fills ETags before checking."""
        if self.if_match is not None and not (
            exists and ("*" in self.if_match or (etag is not None and etag in self.if_match))
        ):
            return False
        return self.if_none_match is None or not (
            exists and ("*" in self.if_none_match or (etag is not None and etag in self.if_none_match))
        )

    def check(self, etag: str | None, *, exists: bool) -> None:
        if not self.holds(etag, exists=exists):
            raise PreconditionFailed(
                "The record does not match the request's If-Match or If-None-Match"
                " (it was changed, deleted or created meanwhile); read it again and retry."
            )
