"""Storage engines behind one small async interface (base.py); the service layer is their only caller."""

from satchel.storage.base import (
    Engine,
    GrantRow,
    KeyItem,
    NewStore,
    RecordHead,
    RecordRead,
    StoreRow,
    StoreStats,
    TokenRow,
    UploadBody,
    UserRow,
)

__all__ = [
    "Engine",
    "GrantRow",
    "KeyItem",
    "NewStore",
    "RecordHead",
    "RecordRead",
    "StoreRow",
    "StoreStats",
    "TokenRow",
    "UploadBody",
    "UserRow",
]
