"""What `satchel serve` leaves in its data dir for the commands run beside it (the address it answers on, the
admin's token), so that `satchel serve --port 9000` and a command that makes links to it or talks to it agree
without the port or the token being given twice."""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import TYPE_CHECKING

from satchel.service.users import TOKEN_FILE

if TYPE_CHECKING:
    from satchel.settings import Settings

SERVED_URL_FILE = "served-url"  # the base URL the last `satchel serve` on a data dir answered on
LOCK_FILE = "serve.lock"  # locked by the `satchel serve` running on the data dir (and its workers)


class DataDirInUse(Exception):
    pass


def lock_data_dir(settings: Settings) -> int:
    """Hold the data dir for this server, for as long as it or a worker forked from it runs (the lock goes
    with the last of them, however they end); DataDirInUse if another `satchel serve` holds it. A second
    server there would take over the address the commands beside it use, and leave it pointing nowhere
    once it stopped. The descriptor returned is kept open, never closed."""
    path = settings.data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        held_by = os.read(fd, 1024).decode(errors="replace").split()
        os.close(fd)
        pid, url = [*held_by, "?", "?"][:2]
        raise DataDirInUse(
            f"Another satchel serve (pid {pid}, at {url}) is using the data dir {settings.data_dir}: stop it "
            "first, or give this server a data dir of its own (--data-dir)."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {settings.base_url}\n".encode(), 0)
    return fd


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
