"""Where a server's time goes under load: py-spy samples it while wrk runs, and the top frames are reported.

    py-spy record --subprocesses --nonblocking --format raw --pid PID   (what runs here)

Frames are reported as a share of all samples taken in the server's processes; samples with no Python frame
(time in granian's Rust threads, or waiting on the GIL) count as "native (no Python frame)".
"""

from __future__ import annotations

import collections
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import Load, which, wrk

LINE = re.compile(r":\d+\)$")
NATIVE = "native (no Python frame)"


@dataclass
class Profile:
    samples: int = 0
    own: list[tuple[str, float]] = field(default_factory=list)  # self time, share of samples
    within: list[tuple[str, float]] = field(default_factory=list)  # inclusive, Satchel's frames only


# The frames of the process that starts the server, below every worker's stack.
MAIN_PROCESS_FILES = ("(satchel/cli.py)", "(satchel/serve_command.py)", "(satchel/__main__.py)")


def _frame(raw: str) -> str:
    return LINE.sub(")", raw).replace(str(Path.cwd()) + "/", "")


def parse(text: str, top: int = 12) -> Profile:
    """Top frames of py-spy's raw (collapsed stack) output."""
    own: collections.Counter[str] = collections.Counter()
    within: collections.Counter[str] = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        own[frames[-1] if frames else NATIVE] += n
        for name in set(frames):
            if "satchel/" in name and not name.endswith(MAIN_PROCESS_FILES):
                within[name] += n
    if not total:
        return Profile()
    return Profile(
        total,
        [(name, n / total) for name, n in own.most_common(top)],
        [(name, n / total) for name, n in within.most_common(top)],
    )


def record(pid: int, load: Load, seconds: float) -> Profile | None:
    """Profile the process tree under `pid` while wrk runs `load`; None when py-spy is missing or fails."""
    spy = which("py-spy")
    if spy is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        cmd = [spy, "record", "--subprocesses", "--nonblocking", "--rate", "250", "--format", "raw"]
        cmd += ["--duration", str(max(1, round(seconds))), "--output", str(out), "--pid", str(pid)]
        load_thread = threading.Thread(target=wrk, args=(load, seconds + 2))
        load_thread.start()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
        load_thread.join()
        if done.returncode != 0 or not out.exists():
            return None
        return parse(out.read_text())


def lines(profile: Profile | None, what: str) -> list[str]:
    """The profile as report notes."""
    if profile is None or not profile.samples:
        return [
            f"Profile of {what}: not taken (py-spy missing or refused; `pip install py-spy`, run as root)."
        ]
    own = "; ".join(f"{name} {share:.0%}" for name, share in profile.own)
    within = "; ".join(f"{name} {share:.0%}" for name, share in profile.within)
    return [
        f"Profile of {what} ({profile.samples:,} py-spy samples), self time: {own}.",
        f"Same profile, inclusive time in Satchel's own frames: {within}.",
    ]
