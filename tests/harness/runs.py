"""Actor runs as the run tests start them."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.harness.envelope import data_of


def start_run(http: httpx.Client, actor: str, **params: Any) -> dict[str, Any]:
    """A new run of the caller's Actor of this name (made on first use)."""
    run: dict[str, Any] = data_of(http.post(f"/acts/~{actor}/runs", params=params), 201)
    time.sleep(0.01)  # the next run starts later: the last run is the one started last
    return run
