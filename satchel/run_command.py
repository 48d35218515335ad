"""`satchel run`: a command run as an Actor run on a Satchel server, as the platform would start it.

The run is made through the API (`POST /v2/acts/~NAME/runs?origin=CLI`, the body being INPUT), so the server
may be anywhere; the command then gets the environment the Apify SDK reads at home and the run's platform
events (run_events.py), its output passes straight through, and its end is recorded: SUCCEEDED (exit code 0),
FAILED (any other) or ABORTED (Ctrl-C, SIGTERM, or an abort through the API), with the exit code. The
command's output is shown as it comes and kept in the run's log (run_log.py): it writes to pipes, not to the
terminal. What `satchel run` itself says goes to stderr, so the command's stdout stays its own.

The command runs in a process group of its own: a Ctrl-C reaches only `satchel run`, which tells a command
that listens to the events `aborting` first, as the platform's graceful abort does, and passes the signal on
to the whole group once (a second SIGINT in the middle of an Actor's clean-up would cut it short): after the
grace the platform gives, or at once on a second Ctrl-C or for a command that does not listen. Like an Actor
on the platform it reads no terminal: stdin is passed on only when it is not a terminal (a background process
group reading one would be stopped).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import httpx

from satchel.clock import iso, now_ms
from satchel.remote import connection, remote_options
from satchel.run_api import Api
from satchel.run_events import GRACE_SECONDS, PlatformEvents, memory_mbytes
from satchel.run_log import RunLog
from satchel.service.validation import MAX_LOG_APPEND, MEMORY_RANGE

DEFAULT_ACTOR = "local-actor"
WATCH_SECONDS = 2.0  # how often the run is read back, to notice an abort through the API
KILL_SECONDS = 10.0  # after the signal that ends a stop, how long a command has before it is killed
END_SECONDS = 60.0  # how long the run's end is tried while the server does not answer
END_RETRY_SECONDS = 2.0
LATE_END_MS = 2000  # an end recorded later than this after the command's carries its own time
ABORTED = ("ABORTING", "ABORTED")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# The SDK calls the API for the run's pricing unless both are set; `{}` counts as unset, so one (free)
# platform event is named with a count of 0.
PRICING_INFO = '{"pricingModel":"FREE"}'
CHARGED_EVENT_COUNTS = '{"apify-actor-start":0}'


def say(message: str) -> None:
    click.echo(f"satchel run: {message}", err=True)


def default_actor() -> str:
    """The current folder's name as an Actor name (an Actor's project folder), else `local-actor`."""
    name = re.sub(r"[^a-zA-Z0-9-]+", "-", Path.cwd().name).strip("-")[:63].strip("-")
    return name or DEFAULT_ACTOR


def read_input(text: str | None) -> bytes | None:
    """--input as the JSON bytes to send: inline JSON, or @FILE holding it."""
    if text is None:
        return None
    raw = text.encode()
    if text.startswith("@"):
        try:
            raw = Path(text[1:]).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {text[1:]}: {exc.strerror}", param_hint="--input") from exc
    try:
        json.loads(raw)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--input") from exc
    return raw


def environment(url: str, token: str, run: dict[str, Any], events_url: str) -> dict[str, str]:
    """The variables the Apify SDK (and Crawlee under it) reads when it runs on the platform."""
    return {
        "APIFY_IS_AT_HOME": "1",
        "ACTOR_EVENTS_WEBSOCKET_URL": events_url,
        "ACTOR_MEMORY_MBYTES": str(run["options"]["memoryMbytes"]),
        # systemInfo's CPU figures are in percent of one core, of this many (run_events.py).
        "APIFY_DEDICATED_CPUS": str(os.cpu_count() or 1),
        "APIFY_TOKEN": token,
        "APIFY_API_BASE_URL": url,
        "APIFY_API_PUBLIC_BASE_URL": url,
        "ACTOR_ID": run["actId"],
        "ACTOR_RUN_ID": run["id"],
        "APIFY_USER_ID": run["userId"],
        "ACTOR_STARTED_AT": run["startedAt"],
        "ACTOR_DEFAULT_KEY_VALUE_STORE_ID": run["defaultKeyValueStoreId"],
        "ACTOR_DEFAULT_DATASET_ID": run["defaultDatasetId"],
        "ACTOR_DEFAULT_REQUEST_QUEUE_ID": run["defaultRequestQueueId"],
        "APIFY_ACTOR_PRICING_INFO": PRICING_INFO,
        "APIFY_CHARGED_ACTOR_EVENT_COUNTS": CHARGED_EVENT_COUNTS,
    }


class Child:
    """The command, in a process group of its own, with the signals `satchel run` gets passed on to it and
    its output copied to the run's log."""

    def __init__(
        self, command: Sequence[str], env: dict[str, str], events: PlatformEvents, log: RunLog
    ) -> None:
        stdin = subprocess.DEVNULL if sys.stdin is not None and sys.stdin.isatty() else None
        # A Python command writes as it prints, as it would to a terminal, not in blocks to the pipe.
        env = {"PYTHONUNBUFFERED": "1", **env}
        self.process = subprocess.Popen(
            command, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        log.copy(self.process.stdout, getattr(sys.stdout, "buffer", None))
        log.copy(self.process.stderr, getattr(sys.stderr, "buffer", None))
        self.events = events
        events.watch(self.process.pid)
        self.stopped_by: str | None = None  # why it was told to stop, if it was
        self.interrupted_by: int | None = None  # the signal `satchel run` was stopped with (Ctrl-C, SIGTERM)
        self.stops = 0  # stops from outside so far
        self.grace: threading.Timer | None = None  # the next signal of a stop, unless the command ends first
        self.done = threading.Event()
        self.ended_at: int | None = None  # when the command ended, by this machine's clock

    def signal(self, signum: int, why: str) -> None:
        self.stopped_by = why  # the last reason, the one that ended it
        if self.done.is_set():  # ended and reaped: its group id may be another's by now
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def stop(self, signum: int, why: str) -> None:
        """Stop the command as the platform's graceful abort does: a command that hears the run's events is
        told `aborting` and given GRACE_SECONDS to end, then gets the signal. A second stop passes the signal
        on at once (so does the first, to a command that hears no events); a third kills the command."""
        self.stops += 1
        if self.stops > 2:
            say(f"stopping ({why}) again: the command is killed (SIGKILL)")
            self.signal(signal.SIGKILL, why)
            return
        if self.stopped_by is not None:
            self.signal(signum, why)
            return
        self.stopped_by = why  # first: a second signal while the event goes out is passed on, not sent again
        if not self.events.aborting():
            self.end(signum, why, kill_after=GRACE_SECONDS)  # the platform force-stops after the grace
            return
        say(
            f"stopping ({why}): the command was told the run is aborting, and has {GRACE_SECONDS:.0f} s"
            " to end; Ctrl-C again stops it now"
        )
        self._after(GRACE_SECONDS, lambda: self.end(signum, why, kill_after=KILL_SECONDS))

    def end(self, signum: int, why: str, *, kill_after: float) -> None:
        """Send the signal now, and SIGKILL `kill_after` seconds later if the command has not ended by then:
        a command ignoring the signal cannot outlive its run."""
        self.signal(signum, why)

        def kill() -> None:
            if not self.done.is_set():
                name = signal.Signals(signum).name
                say(f"the command did not end {kill_after:.0f} s after {name}: it is killed (SIGKILL)")
                self.signal(signal.SIGKILL, why)

        self._after(kill_after, kill)

    def _after(self, seconds: float, action: Callable[[], None]) -> None:
        """The next step of a stop, in `seconds`, unless the command ends first (wait() cancels it)."""
        self.grace = threading.Timer(seconds, action)
        self.grace.daemon = True
        self.grace.start()

    def watch(self, api: Api, run_id: str) -> None:
        """Stop the command when the run is aborted through the API (read back every WATCH_SECONDS): at once
        when ABORTED, and as a Ctrl-C is (`aborting` first) when ABORTING, a graceful abort."""
        graceful = False
        while not self.done.wait(WATCH_SECONDS):
            try:
                status = api.get(run_id)["status"]
            except (click.ClickException, httpx.HTTPError):
                continue  # the server away for a moment: the command goes on
            if status == "ABORTING" and not graceful:
                graceful = True
                self.stop(signal.SIGTERM, "aborted gracefully through the API")
            elif status == "ABORTED":  # at once, or "Stop now" after a graceful abort: as the platform kills
                if self.grace is not None:
                    self.grace.cancel()
                self.end(signal.SIGTERM, "aborted through the API", kill_after=KILL_SECONDS)
                return

    def wait(self) -> int:
        """The command's exit code, 128 + N for a command killed by signal N (as a shell says it)."""
        code = self.process.wait()
        self.ended_at = now_ms()
        self.done.set()
        if self.grace is not None:
            self.grace.cancel()
        return 128 - code if code < 0 else code


def run(  # noqa: PLR0917 - the command line's choices, in its order
    url: str,
    token: str,
    actor: str,
    body: bytes | None,
    command: Sequence[str],
    resume: str | None = None,
    memory: int | None = None,
    server_args: Sequence[str] = (),
) -> int:
    """Run the command as a new run of `actor`, or (`resume`) as that run again, on its storages.
    `server_args` are the options that named the server, for the line that resumes an aborted run."""
    api = Api(url, token)
    if resume is None:
        run = api.start(actor, body, memory or memory_mbytes())
        say(f"run {run['id']} of Actor ~{actor} ({run['actId']}), {url}/v2/actor-runs/{run['id']}")
    else:
        was = api.get(resume)["status"]
        run = api.resume(resume)
        say(f"run {resume} ({was} until now) again, {url}/v2/actor-runs/{resume}")
    run_id = run["id"]
    say(f"  key-value store {run['defaultKeyValueStoreId']}")
    say(f"  dataset         {run['defaultDatasetId']}")
    say(f"  request queue   {run['defaultRequestQueueId']}")
    # The handlers go in before the command starts: a signal that comes while it starts (it may be running
    # and talking already) is passed on once it has, instead of ending `satchel run` and leaving it behind.
    early: list[int] = []
    child: Child | None = None

    def pass_on(signum: int, _frame: object) -> None:
        if child is None:
            early.append(signum)
        else:
            child.interrupted_by = child.interrupted_by or signum
            child.stop(signum, signal.Signals(signum).name)

    previous = {signum: signal.getsignal(signum) for signum in FORWARDED}
    for signum in FORWARDED:
        signal.signal(signum, pass_on)
    log = RunLog(lambda text: api.append_log(run_id, text), say, MAX_LOG_APPEND)
    try:
        with PlatformEvents(run["options"]["memoryMbytes"]) as events:
            try:
                env = {**os.environ, **environment(url, token, run, events.url)}
                child = Child(command, env, events, log)
            except OSError as exc:
                # As a shell says it: 127 for a command not found, 126 for one found but not runnable.
                code = 127 if isinstance(exc, FileNotFoundError) else 126
                why = f"the command {command[0]!r} could not be started: {exc.strerror}"
                log.close([f"satchel run: {why}"])
                api.finish(run_id, "FAILED", code, why[0].upper() + why[1:])
                say(f"run {run_id} FAILED: {why}")
                return code
            for number in early:
                child.interrupted_by = child.interrupted_by or number
                child.signal(number, signal.Signals(number).name)
            threading.Thread(target=child.watch, args=(api, run_id), daemon=True).start()
            code = child.wait()
    except BaseException:
        log.close()
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return ended(
        api,
        run_id,
        child,
        log,
        code=code,
        resume_line=shlex.join(["satchel", "run", *server_args, "--resume", run_id, "--", *command]),
    )


def record_end(api: Api, run_id: str, status: str, code: int, child: Child) -> bool:
    """Record the run's end, tried for up to END_SECONDS while the server does not answer; whether it was.
    Recorded late (the log or the end waited for the server), the end carries the time the command ended:
    the server's clock would give the time it came back."""
    deadline = time.monotonic() + END_SECONDS
    told = False
    while True:
        ended_at = child.ended_at
        late = ended_at is not None and now_ms() - ended_at > LATE_END_MS
        try:
            api.finish(run_id, status, code, finished_at=iso(ended_at) if late and ended_at else None)
            return True
        except httpx.TransportError as exc:  # the server away for a moment (restarting, say)
            if time.monotonic() >= deadline:
                say(f"the run's end could not be recorded: {exc}")
                return False
            if not told:
                say(f"the server does not answer ({exc}); the run's end is tried for {END_SECONDS:.0f} s")
                told = True
            time.sleep(END_RETRY_SECONDS)
        except (click.ClickException, httpx.HTTPError) as exc:
            say(f"the run's end could not be recorded: {exc}")
            return False


def ended(api: Api, run_id: str, child: Child, log: RunLog, *, code: int, resume_line: str) -> int:
    """Record how the run ended, say it, and give `satchel run`'s own exit code."""
    status = "SUCCEEDED" if code == 0 else "FAILED"
    if child.stopped_by is not None:
        status = "ABORTED"
    with contextlib.suppress(click.ClickException, httpx.HTTPError):
        if api.get(run_id)["status"] in ABORTED:
            status = "ABORTED"  # aborted through the API just before the command ended
    why = f", {child.stopped_by}" if child.stopped_by else ""
    # The log's last lines say how the run ended, as the terminal's do; the whole log is sent before the end
    # is recorded (a reader following the log reads it to the end once the run has ended).
    last = [f"run {run_id} {status} (exit code {code}{why})"]
    if status == "ABORTED":
        last.insert(0, f"to go on from where it stopped: {resume_line}")
    log.close([f"satchel run: {line}" for line in last])
    if not record_end(api, run_id, status, code, child):
        say(f"run {run_id} ended with exit code {code}{why}; the server does not have it as {status}")
        return code
    for line in last:
        say(line)
    if child.interrupted_by is not None and code == 0:
        # Interrupted, it ended cleanly: `satchel run` still says it was interrupted (as `timeout` does), so a
        # script running it stops too; the run keeps the command's own exit code.
        return 128 + child.interrupted_by
    return code


@click.command("run", context_settings={"allow_interspersed_args": False})
@remote_options
@click.option("--actor", default=None, help="The Actor's name, made on first use (default: this folder's).")
@click.option("--input", "input_text", default=None, help="INPUT as JSON, or @FILE holding JSON.")
@click.option(
    "--resume",
    "resume",
    metavar="RUN_ID",
    default=None,
    help="Run COMMAND as this earlier run again, on its storages: a stopped crawl goes on where it stopped.",
)
@click.option(
    "--memory",
    type=click.IntRange(*MEMORY_RANGE),
    default=None,
    metavar="MBYTES",
    help="The run's memory, which Crawlee's autoscaling keeps to (default: a quarter of this machine's).",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_command(  # click passes every parameter by name
    *,
    url: str | None,
    token: str | None,
    data_dir: Path | None,
    actor: str | None,
    input_text: str | None,
    resume: str | None,
    memory: int | None,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND as a run of an Actor: with its own key-value store (holding INPUT), dataset and request
    queue on the server, and the environment the Apify SDK reads on the platform.

    Write it as `satchel run [OPTIONS] -- COMMAND...`. Exits with the command's exit code, or with 128 + the
    signal after a Ctrl-C or SIGTERM the command ended cleanly on. A first Ctrl-C reaches the command as the
    run's `aborting` event, with 30 s to end; a second passes the signal on; a third kills it. A command
    still running 10 s after the signal (30 s, when it was sent at once) is killed. Its output is shown and
    kept in the run's log.
    """
    if resume is not None and (actor is not None or input_text is not None or memory is not None):
        raise click.UsageError(
            "--resume runs an earlier run again, with its Actor, INPUT and memory: give none of them."
        )
    # What named the server, to resume with (never the token, which is a secret: it comes as it came).
    server_args = [*(["--url", url] if url else []), *(["--data-dir", str(data_dir)] if data_dir else [])]
    url, token = connection(url, token, data_dir)
    body = read_input(input_text)
    try:
        code = run(url, token, actor or default_actor(), body, command, resume, memory, server_args)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"The server at {url} does not answer: {exc}") from exc
    sys.exit(code)
