"""The plumbing: tools the bench needs, processes it starts, wrk runs and what they measured."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUA = HERE / "lua" / "kv.lua"
BIN = Path(sys.executable).parent
PR_SET_PDEATHSIG = 1


PACKAGES = {"wrk": "wrk", "nginx": "nginx-light"}


def ensure_tools(tools: tuple[str, ...] = ("wrk", "nginx"), *, install: bool = True) -> list[str]:
    """Install these tools from Debian's packages when missing (as root); return those still missing."""
    wanted = {tool: PACKAGES[tool] for tool in tools}
    missing = [pkg for tool, pkg in wanted.items() if not which(tool)]
    if missing and install and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False)
    return [tool for tool in wanted if not which(tool)]


def which(tool: str) -> str | None:
    return shutil.which(tool, path=f"{BIN}:{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    """The command under `taskset -c cpus`, when pinning is asked for and possible."""
    if cpus is None or not shutil.which("taskset"):
        return cmd
    return ["taskset", "-c", cpus, *cmd]


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tree(self) -> list[int]:
        """This process and all its descendants."""
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in (task / "children").read_text().split()]
        return pids

    def memory(self, field_name: str) -> int:
        """Sum of one /proc status field (VmRSS, VmHWM) over the process tree, in bytes."""
        total = 0
        for pid in self.tree():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(field_name + ":"):
                        total += int(line.split()[1]) * 1024
        return total

    def reset_peak(self) -> None:
        """Reset the kernel's peak-RSS mark (VmHWM) of every process in the tree to its RSS now."""
        for pid in self.tree():
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Memory:
    """A server's RSS around one workload, in bytes, summed over its process tree."""

    workload: str
    before: int  # VmRSS just before the load (at rest after start and seeding, unless the row says)
    peak: int = 0  # VmHWM under the load: each process's own peak, reset just before the load
    after: int = 0  # VmRSS once the load has stopped


@contextlib.contextmanager
def watched(proc: Proc, workload: str, into: list[Memory]) -> Iterator[Memory]:
    """Measure the server's memory around the block, into a figure added to `into` (in the order begun)."""
    proc.reset_peak()  # first: every process's peak from here on is at least its RSS read next
    found = Memory(workload, proc.memory("VmRSS"))
    into.append(found)
    yield found
    found.peak, found.after = proc.memory("VmHWM"), proc.memory("VmRSS")


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the bench dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(
    name: str, cmd: list[str], *, logs: Path, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Proc:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            cmd,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )
    return Proc(name, process, log)


def stop(proc: Proc) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.process.wait()


def wait_ready(proc: Proc, url: str, *, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited: {proc.log.read_text()[-2000:]}")
        try:
            httpx.get(url, headers=headers, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer at {url} within {timeout} s")


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        stop(proc)


@dataclass
class Load:
    """One wrk workload: which server, which requests, how many connections."""

    url: str  # scheme://host:port
    mode: str  # get | put | mixed | list | seed
    path: str
    fmt: str = "k%06d"
    keys: int = 1
    query: str = ""
    token: str = ""
    min_size: int = 1024
    max_size: int = 1024
    put_pct: int = 0
    connections: int = 32

    def env(self) -> dict[str, str]:
        return {
            "BENCH_MODE": self.mode,
            "BENCH_PATH": self.path,
            "BENCH_FMT": self.fmt,
            "BENCH_KEYS": str(self.keys),
            "BENCH_QUERY": self.query,
            "BENCH_TOKEN": self.token,
            "BENCH_MIN": str(self.min_size),
            "BENCH_MAX": str(self.max_size),
            "BENCH_PUT_PCT": str(self.put_pct),
        }


@dataclass
class Run:
    """What one wrk run measured."""

    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float  # the longest stall a client saw
    errors: int
    requests: int

    @classmethod
    def parse(cls, stdout: str) -> Run:
        line = next(x for x in reversed(stdout.splitlines()) if x.startswith("{"))
        data = json.loads(line)
        errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
        return cls(
            rps=data["requests"] / (data["duration_us"] / 1e6),
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            p999_ms=data["p999_us"] / 1000,
            max_ms=data["max_us"] / 1000,
            errors=errors,
            requests=data["requests"],
        )


def wrk_command(load: Load, seconds: float, cpus: str | None) -> list[str]:
    cmd = [
        "wrk",
        "-t1",
        f"-c{load.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        load.url,
    ]
    return pinned(cmd, cpus)


def wrk(load: Load, seconds: float, cpus: str | None = None) -> Run:
    cmd = wrk_command(load, seconds, cpus)
    done = subprocess.run(
        cmd,
        env={**os.environ, **load.env()},
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    return Run.parse(done.stdout)


def shown_command(load: Load, seconds: float, cpus: str | None) -> str:
    """The wrk command line as a person would type it, environment included."""
    env = " ".join(f"{k}={v!r}" if " " in v or not v else f"{k}={v}" for k, v in load.env().items() if v)
    cmd = " ".join(wrk_command(load, seconds, cpus)).replace(str(ROOT) + "/", "")
    return f"{env} {cmd}"


@dataclass
class Series:
    """Repeated runs of one workload, summarised as median and spread."""

    label: str
    command: str = ""
    runs: list[Run] = field(default_factory=list)

    def _values(self, name: str) -> list[float]:
        return [getattr(r, name) for r in self.runs]

    def median(self, name: str) -> float:
        return statistics.median(self._values(name)) if self.runs else float("nan")

    def spread(self, name: str) -> tuple[float, float]:
        values = self._values(name)
        return (min(values), max(values)) if values else (float("nan"), float("nan"))

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)


def interleaved(
    loads: dict[str, Load], *, seconds: float, reps: int, warmup: float, cpus: str | None
) -> dict[str, Series]:
    """Warm every workload up, then run them in turns (A B C, A B C, ...) so drift hits all alike."""
    series = {name: Series(name, shown_command(load, seconds, cpus)) for name, load in loads.items()}
    if warmup > 0:
        for load in loads.values():
            wrk(load, warmup, cpus)
    for _ in range(reps):
        for name, load in loads.items():
            series[name].runs.append(wrk(load, seconds, cpus))
    return series


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"
