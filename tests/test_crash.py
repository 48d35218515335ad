"""Crash consistency, quick: SIGKILLs under mixed PUT and DELETE load on every engine (see harness), and on
SQLite with two workers, whose writes the process beside them commits."""

from __future__ import annotations

from pathlib import Path

from tests.harness.crash import CrashConfig, CrashRun
from tests.harness.rigs import Rig, SqliteRig


def survives(rig: Rig, config: CrashConfig) -> None:
    report = CrashRun(rig, config).run()
    print(report.summary())
    assert report.cycles == config.cycles
    assert report.acked_puts > 20
    assert report.checks > 0


def test_acknowledged_writes_survive_sigkill(rig: Rig) -> None:
    survives(rig, CrashConfig(cycles=3))


def test_acknowledged_writes_survive_sigkill_with_two_workers(tmp_path: Path) -> None:
    """The workers hand every write to the writing process and answer once it has committed: killing all of
    them together loses nothing acknowledged."""
    survives(SqliteRig(tmp_path), CrashConfig(cycles=2, args=("--workers", "2")))
