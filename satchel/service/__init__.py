"""The rules of Satchel, between the HTTP layer and storage; nothing here knows of requests or SQL."""

from __future__ import annotations

from dataclasses import dataclass

from satchel.service.access import ANONYMOUS, Caller, Need
from satchel.service.records import KeyPage, Records
from satchel.service.retention import Retention
from satchel.service.stores import StorePage, Stores
from satchel.service.users import Users
from satchel.settings import Settings
from satchel.storage import Engine


@dataclass(slots=True)
class Services:
    settings: Settings
    engine: Engine
    users: Users
    stores: Stores
    records: Records
    retention: Retention


def build_services(settings: Settings, engine: Engine) -> Services:
    stores = Stores(engine)
    return Services(
        settings=settings,
        engine=engine,
        users=Users(engine),
        stores=stores,
        records=Records(
            engine,
            stores,
            max_record_bytes=settings.max_record_bytes,
            max_decoded_bytes=settings.max_decoded_bytes,
        ),
        retention=Retention(
            engine,
            retention_seconds=settings.retention_seconds,
            interval_seconds=settings.sweep_interval_seconds,
        ),
    )


__all__ = [
    "ANONYMOUS",
    "Caller",
    "KeyPage",
    "Need",
    "Records",
    "Services",
    "StorePage",
    "Stores",
    "build_services",
]
