"""Crash consistency, quick: SIGKILLs under mixed PUT and DELETE load on every engine (see harness), and on
SQLite with two workers, whose writes the process beside them commits."""

from __future__ import annotations

from pathlib import Path

from tests.harness.crash import CrashConfig, CrashRun
from tests.harness.rigs import Rig, SqliteRig


def test_acknowledged_writes_survive_sigkill(rig: Rig) -> None:
    report = CrashRun(rig, CrashConfig(cycles=3)).run()
    print(report.summary())
    assert report.cycles == 3
    assert report.acked_puts > 20
    assert report.checks > 0


def test_acknowledged_writes_survive_sigkill_with_two_workers(tmp_path: Path) -> None:
    """The workers hand every write to the writing process and answer once it has committed: killing all of
    them together loses nothing acknowledged."""
    config = CrashConfig(cycles=2, args=("--workers", "2"))
    report = CrashRun(SqliteRig(tmp_path), config).run()
    print(report.summary())
    assert report.cycles == 2
    assert report.acked_puts > 20
    assert report.checks > 0
