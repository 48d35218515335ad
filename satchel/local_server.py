"""What `satchel serve` leaves in its data dir for the commands run beside it (the address it answers on, the
admin's token), so that `satchel serve --port 9000` and a command that makes links to it or talks to it agree
without the port or the token being given twice."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from satchel.service.users import TOKEN_FILE

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
    return _left(settings, SERVED_URL_FILE) or settings.base_url


def local_token(settings: Settings) -> str | None:
    """The admin's token `satchel serve` keeps in the data dir, if readable here."""
    return _left(settings, TOKEN_FILE) or None


def _left(settings: Settings, name: str) -> str:
    try:
        return (settings.data_dir / name).read_text().strip()
    except OSError:  # no server was started on this data dir, or it is elsewhere, or not ours to read
        return ""
