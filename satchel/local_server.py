"""Where the server on a data dir answers: left there by `satchel serve`, read by the commands that make links
to it or talk to it, so that `satchel serve --port 9000` and a command run beside it agree without the port
being given twice."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from satchel.settings import Settings

SERVED_URL_FILE = "served-url"  # the base URL the last `satchel serve` on a data dir answered on


def note_served_url(settings: Settings) -> None:
    # Only a convenience for the commands: a server on a full or read-only disk starts without it.
    with contextlib.suppress(OSError):
        (settings.data_dir / SERVED_URL_FILE).write_text(settings.base_url + "\n")


def local_base_url(settings: Settings) -> str:
    """The address a setting gives (public_url, host or port), else the one the last `satchel serve` on this
    data dir answered on, else the default one."""
    if settings.model_fields_set & {"public_url", "host", "port"}:
        return settings.base_url
    try:
        served = (settings.data_dir / SERVED_URL_FILE).read_text().strip()
    except OSError:  # no server was started on this data dir, or it is elsewhere
        served = ""
    return served or settings.base_url
