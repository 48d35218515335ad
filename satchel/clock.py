"""Time as Satchel keeps it (epoch milliseconds) and writes it (ISO 8601, UTC, with Z)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

# A process that did not run this long (stopped, a paused VM, its loop held) may have held writes whose
# clients gave up and wrote elsewhere: the API (api/pauses.py) and the process that commits for the workers
# (storage/sqlite/handoff.py) refuse such writes rather than apply them late.
PAUSE_SECONDS = 2.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    # isoformat rather than strftime("%Y"), which the C library writes unpadded: year 2 came out as "2-01-01".
    return datetime.fromtimestamp(ms // 1000, tz=UTC).isoformat()[:19] + f".{ms % 1000:03d}Z"
