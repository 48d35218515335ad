"""The rules for Actors and their runs, as far as storages reach into them."""

from __future__ import annotations

from satchel.service.stores import Stores
from satchel.storage import Storage


class Runs:
    def __init__(self, storage: Storage, stores: Stores) -> None:
        self.storage = storage
        self.stores = stores
