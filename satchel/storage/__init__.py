"""Storage engines behind one small async interface (base.py); the service layer is their only caller."""

from satchel.storage.base import (
    Engine,
    KeyItem,
    NewStore,
    RecordHead,
    RecordRead,
    StoreRow,
    StoreStats,
    UploadBody,
    UserRow,
)

__all__ = [
    "Engine",
    "KeyItem",
    "NewStore",
    "RecordHead",
    "RecordRead",
    "StoreRow",
    "StoreStats",
    "UploadBody",
    "UserRow",
]
