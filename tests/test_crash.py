"""Crash consistency, quick: three SIGKILLs under mixed PUT and DELETE load on every engine (see harness)."""

from __future__ import annotations

from tests.harness.crash import CrashConfig, CrashRun
from tests.harness.rigs import Rig


def test_acknowledged_writes_survive_sigkill(rig: Rig) -> None:
    report = CrashRun(rig, CrashConfig(cycles=3)).run()
    print(report.summary())
    assert report.cycles == 3
    assert report.acked_puts > 20
    assert report.checks > 0
