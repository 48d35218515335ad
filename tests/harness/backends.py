"""The backends the scale-out engines run on, started once per test session when first asked for.

Every engine combination the suites run on is named here: "sqlite+files" (the embedded default),
"postgres+files" and "postgres+s3". Each use gets its own database and bucket, so tests never see each other's
data. PostgreSQL is real (tests/harness/postgres.py), S3 is a real SeaweedFS (tests/harness/seaweed.py).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from satchel.settings import Settings

if TYPE_CHECKING:  # each backend's harness is imported when it is first started
    from tests.harness.postgres import Postgres
    from tests.harness.seaweed import Seaweed

COMBOS = ("sqlite+files", "postgres+files", "postgres+s3")


class Backends:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._postgres: Postgres | None = None
        self._seaweed: Seaweed | None = None

    @property
    def postgres(self) -> Postgres:
        if self._postgres is None:
            from tests.harness.postgres import start_postgres  # noqa: PLC0415

            self._postgres = start_postgres(self.root / "postgres")
        return self._postgres

    @property
    def seaweed(self) -> Seaweed:
        if self._seaweed is None:
            from tests.harness.seaweed import start_seaweed  # noqa: PLC0415

            self._seaweed = start_seaweed(self.root / "seaweed")
            # In-process engines read their S3 credentials from the environment, as servers do.
            os.environ.update(self._seaweed.env())
        return self._seaweed

    def locations(self, combo: str) -> dict[str, str]:
        """Where a fresh, empty deployment of the combination keeps its data: `database` and `blob_store`."""
        metadata, _, bodies = combo.partition("+")
        found = {"database": "", "blob_store": ""}
        name = "t" + secrets.token_hex(6)
        if metadata == "postgres":
            found["database"] = self.postgres.create_database(name)
        if bodies == "s3":
            found["blob_store"] = self.seaweed.blob_store_url(name)
        return found

    def copy(self, combo: str, where: dict[str, str]) -> dict[str, str]:
        """Fresh locations holding a copy of what a stopped deployment of the combination keeps at `where`
        (a database made from it as a template, a bucket with its objects); the data dir is the caller's."""
        metadata, _, bodies = combo.partition("+")
        found = {"database": "", "blob_store": ""}
        name = "t" + secrets.token_hex(6)
        if metadata == "postgres":
            template = where["database"].rsplit("/", 1)[1]
            found["database"] = self.postgres.create_database(name, template=template)
        if bodies == "s3":
            found["blob_store"] = self.seaweed.blob_store_url(name)
            self.seaweed.copy_bucket(where["blob_store"], found["blob_store"])
        return found

    def env(self, combo: str) -> dict[str, str]:
        """What a `satchel serve` process needs in its environment beyond the locations (S3 credentials)."""
        return self.seaweed.env() if combo.endswith("+s3") else {}

    def settings(self, combo: str, data_dir: Path, **overrides: Any) -> Settings:
        options: dict[str, Any] = {**self.locations(combo), **overrides}
        return Settings(data_dir=data_dir, **options)

    def stop(self) -> None:
        if self._postgres is not None:
            from tests.harness.postgres import stop_postgres  # noqa: PLC0415

            stop_postgres(self._postgres)
            self._postgres = None
        if self._seaweed is not None:
            from tests.harness.seaweed import stop_seaweed  # noqa: PLC0415

            stop_seaweed(self._seaweed)
            self._seaweed = None
