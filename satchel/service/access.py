"""Who is calling, and how far a caller may go with a store."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from satchel.storage import GeneralAccess, Grant, StoreRow, UserRow

GENERAL_ACCESS = tuple(GeneralAccess)
# A user's own default cannot follow itself.
USER_GENERAL_ACCESS = tuple(a for a in GeneralAccess if a is not GeneralAccess.FOLLOW_USER_SETTING)
DEFAULT_GENERAL_ACCESS = GeneralAccess.FOLLOW_USER_SETTING
GRANTS = tuple(Grant)


class Level(IntEnum):
    """How far a caller may go with one store, each level including those below it."""

    NONE = 0
    READ = 1
    WRITE = 2
    OWNER = 3


class Need(IntEnum):
    """What a call needs to do with a store: each is the least Level that allows it (`have >= need`).
    An IntEnum, so that comparing and hashing cost no Python call on every request."""

    READ = Level.READ  # read records, list keys, see the store
    WRITE = Level.WRITE  # put and delete records
    OWN = Level.OWNER  # rename, change access, share, delete the store


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity behind a request: a user with a valid token, or nobody."""

    user: UserRow | None

    @property
    def user_id(self) -> str | None:
        return self.user.id if self.user else None


ANONYMOUS = Caller(None)


def effective_access(store: StoreRow) -> GeneralAccess:
    if store.general_access is GeneralAccess.FOLLOW_USER_SETTING:
        return store.owner_default_access
    return store.general_access


def level(caller: Caller, store: StoreRow, grant: Grant | None, *, by_name: bool) -> Level:
    """The caller's level on the store, given the right its owner granted them (if any).

    General access lets anyone read: by id with ANYONE_WITH_ID_CAN_READ, by id or `username~name` with
    ANYONE_WITH_NAME_CAN_READ. It never lets anyone write.
    """
    if caller.user is not None and caller.user.id == store.user_id:
        return Level.OWNER
    if grant is Grant.WRITE:
        return Level.WRITE
    if grant is Grant.READ:
        return Level.READ
    access = effective_access(store)
    if access is GeneralAccess.ANYONE_WITH_NAME_CAN_READ or (
        access is GeneralAccess.ANYONE_WITH_ID_CAN_READ and not by_name
    ):
        return Level.READ
    return Level.NONE
