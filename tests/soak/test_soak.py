"""The long runs (`make soak`): many SIGKILL cycles, long concurrent load, crashes on a full disk.

Not part of `make test` (marker `soak`). Each test prints its figures; `SATCHEL_SOAK_CYCLES` sets the number
of kill cycles of the main crash run (default 25).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.harness.concurrency import ConcurrencyConfig, ConcurrencyRun
from tests.harness.crash import CrashConfig, CrashRun
from tests.harness.disk import small_filesystem
from tests.harness.rigs import Rig, SqliteRig

pytestmark = [pytest.mark.soak, pytest.mark.timeout(7200)]
CYCLES = int(os.environ.get("SATCHEL_SOAK_CYCLES", "25"))


def test_crash_soak(rig: Rig) -> None:
    config = CrashConfig(
        cycles=CYCLES, writers=6, readers=2, keys_per_writer=12, load_seconds=(1.0, 6.0), seed=11
    )
    report = CrashRun(rig, config).run()
    print("\n" + report.summary())
    assert report.cycles >= 20


def test_crash_soak_two_workers_and_power_durability(rig: Rig) -> None:
    """Kills of a server with two worker processes and the process that writes for them (all three at once),
    fsyncing every commit."""
    config = CrashConfig(
        cycles=10,
        writers=6,
        load_seconds=(1.0, 5.0),
        seed=12,
        args=("--workers", "2"),
        env={"SATCHEL_BLOB_GRACE_SECONDS": "2", "SATCHEL_DURABILITY": "power"},
    )
    report = CrashRun(rig, config).run()
    print("\n" + report.summary())
    assert report.cycles == 10
    assert report.acked_puts > 0


def test_crash_soak_on_a_nearly_full_disk(tmp_path: Path) -> None:
    """The load overfills a small filesystem: refusals (507) change nothing, and kills there lose nothing."""
    rig = SqliteRig(tmp_path)
    with small_filesystem(rig.data_dir, 96):
        config = CrashConfig(
            cycles=8,
            writers=6,
            keys_per_writer=10,
            load_seconds=(2.0, 6.0),
            delete_share=0.3,
            seed=13,
            refusals=(507,),
        )
        report = CrashRun(rig, config).run()
    print("\n" + report.summary())
    assert report.refused[507] > 0, "the disk never filled"


@pytest.fixture
def four_processes(rig: Rig) -> Iterator[list[Server]]:
    """Two `satchel serve` on two ports over the same data, two worker processes each."""
    servers = [rig.start(args=("--workers", "2")), rig.start(args=("--workers", "2"))]
    yield servers
    for server in servers:
        rig.stop(server)
    assert rig.integrity_problems() == []


def test_concurrency_soak(four_processes: list[Server]) -> None:
    report = ConcurrencyRun(four_processes, ConcurrencyConfig(clients=64, ops_per_client=250, seed=21)).run()
    print("\n" + report.summary())
    assert report.cross_reads > 0
