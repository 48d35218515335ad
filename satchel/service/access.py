"""Who is calling, and what a caller may do with a store."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from satchel.storage import StoreRow, UserRow

GENERAL_ACCESS = ("RESTRICTED", "ANYONE_WITH_ID_CAN_READ", "ANYONE_WITH_NAME_CAN_READ", "FOLLOW_USER_SETTING")
DEFAULT_GENERAL_ACCESS = "FOLLOW_USER_SETTING"
# What FOLLOW_USER_SETTING means while users have no account setting of their own.
USER_DEFAULT_ACCESS = "RESTRICTED"


class Need(Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity behind a request: a user with a valid token, or nobody."""

    user: UserRow | None

    @property
    def user_id(self) -> str | None:
        return self.user.id if self.user else None


ANONYMOUS = Caller(None)


def effective_access(store: StoreRow) -> str:
    if store.general_access == "FOLLOW_USER_SETTING":
        return USER_DEFAULT_ACCESS
    return store.general_access


def allowed(caller: Caller, store: StoreRow, need: Need, *, by_name: bool) -> bool:
    if caller.user is not None and caller.user.id == store.user_id:
        return True
    if need is Need.WRITE:
        return False
    access = effective_access(store)
    if access == "ANYONE_WITH_NAME_CAN_READ":
        return True
    return access == "ANYONE_WITH_ID_CAN_READ" and not by_name


def may_write(caller: Caller, store: StoreRow) -> bool:
    return caller.user is not None and caller.user.id == store.user_id
