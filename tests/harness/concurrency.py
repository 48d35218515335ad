"""Concurrency across server processes: many clients on overlapping keys, every read checked afterwards.

Two (or more) servers run over the same data. Each client repeatedly writes a key through one server and reads
it back through another, reads keys others write, lists keys, and sometimes deletes its own keys. Every
operation is logged with when it was sent and when its answer came; the checks run on the whole log:

- a read returns a value some write sent, and never one that was already overwritten before the read began
  (for a key with one sequential writer: exactly the last acknowledged value), so read-after-write holds
  across processes;
- each key's final value, as every server reports it, is one of the writes nothing overwrote afterwards
  (the last acknowledged one for a sequential writer);
- listed sizes, storageBytes and the read/write/delete/list counters add up to what the clients did.
"""

from __future__ import annotations

import asyncio
import math
import random
import ssl
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx

from tests.harness.bodies import KIB, MIB, Value, upload
from tests.harness.reading import afetch, all_keys, stats
from tests.harness.rigs import wait_until
from tests.harness.server import Server

TLS = ssl.create_default_context()  # never used (plain HTTP), but made once, not per client
SIZES = ((10, 30), (2 * KIB, 30), (40 * KIB, 20), (200 * KIB, 12), (MIB, 4))


@dataclass
class ConcurrencyConfig:
    clients: int = 64
    ops_per_client: int = 20
    shared_keys: int = 12  # written by everyone
    own_keys: int = 2  # per client, written by that client alone
    gzip_share: float = 0.2
    seed: int = 1


@dataclass(slots=True)
class Write:
    key: str
    value: Value | None  # None: a delete
    start: float
    end: float = math.inf


@dataclass(slots=True)
class Read:
    key: str
    sha: str | None
    start: float
    end: float
    via: int


@dataclass
class ConcurrencyReport:
    servers: int
    clients: int
    ops: Counter[str] = field(default_factory=Counter)
    reads_checked: int = 0
    cross_reads: int = 0  # reads through another server than the write just before them
    seconds: float = 0.0

    def summary(self) -> str:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(self.ops.items()))
        return (
            f"{self.clients} clients over {self.servers} server processes in {self.seconds:.1f} s: {ops}; "
            f"{self.reads_checked} reads checked, {self.cross_reads} of them right after a write"
            " through another process"
        )


class ConcurrencyRun:
    def __init__(self, servers: list[Server], config: ConcurrencyConfig) -> None:
        assert len(servers) >= 2
        self.servers = servers
        self.config = config
        self.report = ConcurrencyReport(len(servers), config.clients)
        self.writes: dict[str, list[Write]] = defaultdict(list)
        self.reads: list[Read] = []
        self.errors: list[str] = []
        self.store_id = ""
        self.shared = [f"shared-{i}" for i in range(config.shared_keys)]
        self.deleted = 0  # deletes that removed something (own keys only, so the client knows)
        self.record_reads = 0
        self.lists = 0
        self.final: list[dict[str, str | None]] = []  # per server: each key's digest at the end

    async def _read(self, http: httpx.AsyncClient, via: int, key: str) -> Read:
        start = time.monotonic()
        seen = await afetch(http, self.store_id, key)
        read = Read(key, seen.sha, start, time.monotonic(), via)
        self.reads.append(read)
        self.record_reads += seen.status == 200
        self.report.ops["GET"] += 1
        return read

    async def _put(self, http: httpx.AsyncClient, key: str, rng: random.Random) -> bool:
        size = rng.choices([s for s, _ in SIZES], weights=[w for _, w in SIZES])[0]
        up = upload(rng, size, gzip_share=self.config.gzip_share)
        write = Write(key, up.value, time.monotonic())
        self.writes[key].append(write)
        response = await http.put(
            f"/key-value-stores/{self.store_id}/records/{key}", content=up.content, headers=up.headers
        )
        self.report.ops["PUT"] += 1
        if response.status_code != 201:
            self.errors.append(f"PUT {key}: {response.status_code} {response.text[:200]}")
            return False
        write.end = time.monotonic()
        return True

    async def _delete(self, http: httpx.AsyncClient, key: str, present: bool) -> bool:
        write = Write(key, None, time.monotonic())
        self.writes[key].append(write)
        response = await http.delete(f"/key-value-stores/{self.store_id}/records/{key}")
        self.report.ops["DELETE"] += 1
        if response.status_code != 204:
            self.errors.append(f"DELETE {key}: {response.status_code} {response.text[:200]}")
            return False
        write.end = time.monotonic()
        self.deleted += present
        return True

    def _connect(self, server: Server) -> httpx.AsyncClient:
        # A client of its own per task and server: one pool shared by 64 tasks costs O(connections) a request.
        return httpx.AsyncClient(
            base_url=server.api, headers={"authorization": f"Bearer {server.token}"}, timeout=120, verify=TLS
        )

    async def _client(self, index: int) -> None:
        clients = [self._connect(s) for s in self.servers]
        try:
            await self._operate(index, clients)
        finally:
            for http in clients:
                await http.aclose()

    async def _operate(self, index: int, clients: list[httpx.AsyncClient]) -> None:
        rng = random.Random(self.config.seed * 7919 + index)
        own = [f"c{index}-own-{i}" for i in range(self.config.own_keys)]
        present: dict[str, bool] = dict.fromkeys(own, False)
        n = len(clients)
        for _ in range(self.config.ops_per_client):
            a = rng.randrange(n)
            b = (a + 1 + rng.randrange(n - 1)) % n  # another server than a
            roll = rng.random()
            if roll < 0.35:
                key = rng.choice(self.shared)
                if await self._put(clients[a], key, rng):
                    await self._read(clients[b], b, key)
                    self.report.cross_reads += 1
            elif roll < 0.55:
                key = rng.choice(own)
                if await self._put(clients[a], key, rng):
                    present[key] = True
                    await self._read(clients[b], b, key)
                    self.report.cross_reads += 1
            elif roll < 0.65:
                key = rng.choice(own)
                if await self._delete(clients[a], key, present[key]):
                    present[key] = False
                    await self._read(clients[b], b, key)
                    self.report.cross_reads += 1
            elif roll < 0.93:
                await self._read(clients[a], a, rng.choice(self.shared))
            else:
                response = await clients[a].get(f"/key-value-stores/{self.store_id}/keys")
                self.report.ops["list keys"] += 1
                self.lists += 1
                if response.status_code != 200:
                    self.errors.append(f"keys: {response.status_code} {response.text[:200]}")

    # --- checks on the whole log

    def allowed(self, key: str, start: float, end: float) -> set[str | None]:
        """Values a read over [start, end] may return: from a write begun before it ended and not overwritten
        by another write that both began after it and finished before the read began."""
        writes = self.writes.get(key, [])
        latest = max((w.start for w in writes if w.end < start), default=-math.inf)
        found = {w.value.raw_sha if w.value else None for w in writes if w.start < end and w.end >= latest}
        if latest == -math.inf:
            found.add(None)  # nothing finished before the read: the key may still be absent
        return found

    def check_reads(self) -> None:
        for read in self.reads:
            if read.sha not in self.allowed(read.key, read.start, read.end):
                self.errors.append(
                    f"stale or foreign read of {read.key} via server {read.via}: {read.sha and read.sha[:12]}"
                )
            self.report.reads_checked += 1

    async def run_async(self) -> ConcurrencyReport:
        began = time.monotonic()
        clients = [self._connect(s) for s in self.servers]
        try:
            response = await clients[0].post("/key-value-stores", params={"name": f"race-{self.config.seed}"})
            assert response.status_code in (200, 201), response.text
            self.store_id = response.json()["data"]["id"]
            await asyncio.gather(*(self._client(i) for i in range(self.config.clients)))
            # Every key's final value, through every server.
            keys = [*self.shared, *(k for k in self.writes if "-own-" in k)]
            for via, http in enumerate(clients):
                self.final.append({key: (await self._read(http, via, key)).sha for key in keys})
        finally:
            for http in clients:
                await http.aclose()
        self.report.seconds = time.monotonic() - began
        return self.report

    def final_values(self) -> dict[str, Value]:
        """The value each key ends with, as the final reads found it (None entries are absent keys)."""
        last: dict[str, Read] = {}
        for read in self.reads:
            last[read.key] = read
        values: dict[str, Value] = {}
        for key, read in last.items():
            for write in self.writes.get(key, []):
                if write.value is not None and write.value.raw_sha == read.sha:
                    values[key] = write.value
        return values

    def check_totals(self) -> None:
        """Sizes and counters against what the clients did, once every server has flushed its counters."""
        assert all(f == self.final[0] for f in self.final), "the servers disagree on final values"
        values = self.final_values()
        expected_sizes = {k: v.stored_size for k, v in values.items()}
        acked_puts = sum(1 for ws in self.writes.values() for w in ws if w.value and w.end < math.inf)
        expected = {
            "writeCount": acked_puts,
            "deleteCount": self.deleted,
            "readCount": self.record_reads,
            "storageBytes": sum(expected_sizes.values()),
        }
        for server in self.servers:
            with server.client() as http:
                listed = all_keys(http, self.store_id)
                # The listing itself counts; say so before comparing.
                self.lists += 1
                assert listed == expected_sizes, sorted(set(listed.items()) ^ set(expected_sizes.items()))
        expected["listCount"] = self.lists

        def settled() -> bool:
            return all(self._stats_of(s, expected) == expected for s in self.servers)

        if not wait_until(settled, 10, step=0.25):
            got = [self._stats_of(s, expected) for s in self.servers]
            raise AssertionError(f"stats {got} != expected {expected}")

    def _stats_of(self, server: Server, expected: dict[str, int]) -> dict[str, int]:
        with server.client() as http:
            found = stats(http, self.store_id)
        return {k: found[k] for k in expected}

    def run(self) -> ConcurrencyReport:
        asyncio.run(self.run_async())
        self.check_reads()
        assert not self.errors, "\n".join(self.errors[:30])
        self.check_totals()
        return self.report
