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
# A file per running `satchel serve`, holding its address, locked while it (or a worker of it) lives.
SERVING_DIR = "serving"
_held: list[int] = []  # this server's own entry, kept open (so locked) for as long as the process lives


def note_served_url(settings: Settings) -> None:
    """Say where this server answers, for the commands run beside it. Several servers may run on one data
    dir (a new one started before the old one stops, say): each keeps a locked entry, and the commands take
    the newest one still running, so they do not follow a server that has stopped while another runs on."""
    # Only a convenience for the commands: a server on a full or read-only disk starts without it.
    with contextlib.suppress(OSError):
        (settings.data_dir / SERVED_URL_FILE).write_text(settings.base_url + "\n")
        folder = settings.data_dir / SERVING_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        # Locked before it takes its name, so a command never finds it unlocked and takes it for stale.
        scratch = folder / f".{os.getpid()}.new"
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # goes with the last process holding it (workers fork with it)
        os.write(fd, settings.base_url.encode())
        scratch.rename(folder / str(os.getpid()))
        _held.append(fd)


def running_url(settings: Settings) -> str:
    """The address of the newest `satchel serve` still running on the data dir, if one is; entries of
    servers that have ended are removed on the way."""
    newest: tuple[float, str] | None = None
    folder = settings.data_dir / SERVING_DIR
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError), open(entry, "rb") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # held: its server runs
                    started = os.fstat(f.fileno()).st_mtime
                    if newest is None or started > newest[0]:
                        newest = (started, f.read().decode(errors="replace").strip())
                    continue
                entry.unlink()  # nobody holds it: its server has ended
    return newest[1] if newest else ""


def local_base_url(settings: Settings) -> str:
    """The address a setting gives (public_url, host or port), else the newest `satchel serve` running on
    this data dir answers on, else the one the last to run there answered on, else the default one."""
    if settings.model_fields_set & {"public_url", "host", "port"}:
        return settings.base_url
    return running_url(settings) or _left(settings, SERVED_URL_FILE) or settings.base_url


def local_token(settings: Settings) -> str | None:
    """The admin's token `satchel serve` keeps in the data dir, if readable here."""
    return _left(settings, TOKEN_FILE) or None


def _left(settings: Settings, name: str) -> str:
    try:
        return (settings.data_dir / name).read_text().strip()
    except OSError:  # no server was started on this data dir, or it is elsewhere, or not ours to read
        return ""
