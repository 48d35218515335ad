"""Storage behind one small seam (base.py): rows, tables, bodies, blob stores and the change feed."""

from satchel.storage.base import GrantTable, RecordTable, Storage, StoreTable, UserTable
from satchel.storage.body import RecordRead, UploadBody
from satchel.storage.rows import (
    GeneralAccess,
    Grant,
    GrantRow,
    KeyItem,
    NewStore,
    Ownership,
    RecordHead,
    StorageKind,
    StorageTotals,
    StoreRow,
    StoreStats,
    StoreUsage,
    TokenRow,
    UserRow,
)

__all__ = [
    "GeneralAccess",
    "Grant",
    "GrantRow",
    "GrantTable",
    "KeyItem",
    "NewStore",
    "Ownership",
    "RecordHead",
    "RecordRead",
    "RecordTable",
    "Storage",
    "StorageKind",
    "StorageTotals",
    "StoreRow",
    "StoreStats",
    "StoreTable",
    "StoreUsage",
    "TokenRow",
    "UploadBody",
    "UserRow",
    "UserTable",
]
