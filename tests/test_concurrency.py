"""Concurrency, quick: 64 clients on overlapping keys across two server processes over the same data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Server
from tests.harness.concurrency import ConcurrencyConfig, ConcurrencyRun
from tests.harness.rigs import Rig


@pytest.fixture
def two_servers(rig: Rig) -> Iterator[list[Server]]:
    """Two separate `satchel serve` processes on two ports over the same data."""
    servers = [rig.start(), rig.start()]
    yield servers
    for server in servers:
        rig.stop(server)
    assert rig.integrity_problems() == []


def test_64_clients_across_two_processes_read_their_writes(two_servers: list[Server]) -> None:
    report = ConcurrencyRun(two_servers, ConcurrencyConfig(clients=64, ops_per_client=40)).run()
    print(report.summary())
    assert report.cross_reads > 600
