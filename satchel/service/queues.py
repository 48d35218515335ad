"""The rules for request queues and their requests."""

from __future__ import annotations

from satchel.service.stores import Stores
from satchel.storage import Storage


class RequestQueues:
    def __init__(self, storage: Storage, stores: Stores) -> None:
        self.storage = storage
        self.stores = stores
