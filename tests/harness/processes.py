"""Processes as /proc shows them: what a server started, and whether a process still runs."""

from __future__ import annotations

import time
from pathlib import Path


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first, then the parent's id)."""
    return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def live_children(parent: int) -> dict[int, bytes]:
    """The processes `parent` started that still run (not those dead and not yet reaped), with their command
    lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(entry.name)
            command = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            found[int(entry.name)] = command
    return found


def children(parent: int) -> list[int]:
    """The processes `parent` started, from its own list of them (no scan of /proc, so quick enough to see a
    process as it starts); empty when `parent` is gone."""
    try:
        return [
            int(pid)
            for pid in (Path("/proc") / str(parent) / "task" / str(parent) / "children").read_text().split()
        ]
    except OSError:
        return []


def alive(pid: int) -> bool:
    """Whether the process runs: neither gone nor a zombie."""
    try:
        return _stat(pid)[0] != "Z"
    except OSError:
        return False


def gone(pid: int, seconds: float = 10) -> bool:
    """Whether the process left /proc (ended and reaped, its sockets closed) within `seconds`."""
    deadline = time.monotonic() + seconds
    while (Path("/proc") / str(pid)).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not (Path("/proc") / str(pid)).exists()


def writing_process(server_pid: int) -> int | None:
    """The id of the process `satchel serve` started to write for its workers, while it runs."""
    return next(
        (pid for pid, command in live_children(server_pid).items() if b"write_process" in command), None
    )


def paused(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP): it runs no further until SIGCONT."""
    try:
        return _stat(pid)[0] == "T"
    except OSError:
        return False


def pending(pid: int, signum: int) -> bool:
    """Whether `signum` was sent to the process and not yet delivered (/proc's ShdPnd mask: signal n at bit
    n - 1), as while the process is stopped."""
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("ShdPnd:"))
    return bool(int(mask, 16) >> (signum - 1) & 1)
