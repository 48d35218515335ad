"""The rules for datasets and their items."""

from __future__ import annotations

from satchel.service.stores import Stores
from satchel.storage import Storage


class Datasets:
    def __init__(self, storage: Storage, stores: Stores) -> None:
        self.storage = storage
        self.stores = stores
