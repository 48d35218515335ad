"""Crash consistency: sustained PUT and DELETE load, SIGKILL at random moments, restart, check everything.

Each writer owns its keys and sends one operation at a time, so it knows per key the last acknowledged state
and the one operation in flight (sent, never answered) when the server died. After a restart:

- an acknowledged write is there byte for byte (as decoded and as stored), an acknowledged delete is gone;
- an in-flight write left the old value or the new one, an in-flight delete the old value or nothing;
- no record is partial (its digest is one of those two), listed sizes and storageBytes add up, and
  writeCount / deleteCount count exactly the writes and deletes that took effect;
- the data at rest passes the engine's integrity check after every kill, and once the server has cleaned up
  (startup scan, grace period) nothing unreferenced is left.

Readers run beside the writers and check that every value they see was sent whole by some writer.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from satchel.storage.housekeeping import UPLOAD_MAX_AGE_MS
from tests.harness.bodies import MIB, Value, pick_size, upload
from tests.harness.reading import all_keys, fetch, stats
from tests.harness.rigs import HOUR, Rig, wait_until
from tests.harness.server import Server


@dataclass
class CrashConfig:
    cycles: int = 3
    writers: int = 4
    readers: int = 2
    keys_per_writer: int = 10
    load_seconds: tuple[float, float] = (1.0, 2.5)  # how long the load runs before each kill
    delete_share: float = 0.15
    gzip_share: float = 0.3
    max_size: int = 20 * MIB
    seed: int = 1
    env: dict[str, str] = field(default_factory=lambda: {"SATCHEL_BLOB_GRACE_SECONDS": "2"})
    args: tuple[str, ...] = ()
    refusals: tuple[int, ...] = ()  # statuses that mean "refused, nothing changed" (507 on a full disk)


@dataclass
class CrashReport:
    engine: str
    cycles: int = 0
    acked_puts: int = 0
    acked_deletes: int = 0
    acked_bytes: int = 0  # decoded bytes of every acknowledged PUT
    sent_bytes: int = 0  # bytes on the wire of every acknowledged PUT
    checks: int = 0  # record states checked after restarts, each by two GETs
    live_reads: int = 0  # GETs during the load, each checked against every value sent for its key
    in_flight: Counter[str] = field(default_factory=Counter)
    refused: Counter[int] = field(default_factory=Counter)
    final_records: int = 0
    final_bytes: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.in_flight.items())) or "none"
        refused = "".join(f", {v} refused with {k}" for k, v in sorted(self.refused.items()))
        return (
            f"[{self.engine}] {self.cycles} SIGKILL cycles in {self.seconds:.0f} s: "
            f"{self.acked_puts} acknowledged PUTs ({self.acked_bytes / MIB:.1f} MiB decoded, "
            f"{self.sent_bytes / MIB:.1f} MiB sent), {self.acked_deletes} acknowledged DELETEs{refused}, "
            f"{self.checks} record states checked after restarts, {self.live_reads} live reads checked; "
            f"in flight at the kills: {outcomes}; "
            f"{self.final_records} records ({self.final_bytes / MIB:.1f} MiB stored) at the end"
        )


@dataclass
class KeyState:
    acked: Value | None = None  # the last acknowledged state; None: absent
    pending: tuple[str, Value | None] | None = None  # sent but unanswered: ("put", value) or ("delete", None)
    sent: set[str] = field(default_factory=set)  # digests (decoded and stored) of every value ever sent


class CrashRun:
    def __init__(self, rig: Rig, config: CrashConfig) -> None:
        self.rig = rig
        self.config = config
        self.report = CrashReport(rig.name)
        self.keys: dict[str, KeyState] = {}
        self.by_writer: list[list[str]] = []
        for w in range(config.writers):
            names = [f"w{w}-k{k}" for k in range(config.keys_per_writer)]
            self.by_writer.append(names)
            self.keys.update((name, KeyState()) for name in names)
        self.expected_writes = 0
        self.expected_deletes = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.store_id = ""

    # --- the load

    def _writer(self, server: Server, index: int, stop: threading.Event, rng: random.Random) -> None:
        cfg = self.config
        with server.client() as http:
            while not stop.is_set():
                key = rng.choice(self.by_writer[index])
                state = self.keys[key]
                url = f"/key-value-stores/{self.store_id}/records/{key}"
                try:
                    if rng.random() < cfg.delete_share:
                        state.pending = ("delete", None)
                        response = http.delete(url)
                    else:
                        up = upload(rng, pick_size(rng, max_size=cfg.max_size), gzip_share=cfg.gzip_share)
                        state.sent.update((up.value.raw_sha, up.value.stored_sha))
                        state.pending = ("put", up.value)
                        response = http.put(url, content=up.content, headers=up.headers)
                except httpx.ConnectError:
                    state.pending = None  # never reached the server
                    return
                except httpx.TransportError:
                    return  # the server died while this was in flight: it stays pending
                self._settle(key, state, response)

    def _settle(self, key: str, state: KeyState, response: httpx.Response) -> None:
        assert state.pending is not None
        op, value = state.pending
        state.pending = None
        with self._lock:
            if op == "put" and response.status_code == 201:
                assert value is not None
                self.report.acked_puts += 1
                self.report.acked_bytes += value.raw_size
                self.report.sent_bytes += value.stored_size
                self.expected_writes += 1
                state.acked = value
            elif op == "delete" and response.status_code == 204:
                self.report.acked_deletes += 1
                if state.acked is not None:
                    self.expected_deletes += 1
                state.acked = None
            elif response.status_code in self.config.refusals:
                self.report.refused[response.status_code] += 1
            else:
                self.errors.append(f"{op} {key}: {response.status_code} {response.text[:200]}")

    def _reader(self, server: Server, stop: threading.Event, rng: random.Random) -> None:
        names = list(self.keys)
        with server.client() as http:
            while not stop.is_set():
                key = rng.choice(names)
                try:
                    seen = fetch(http, self.store_id, key, accept_encoding=rng.choice(("identity", "gzip")))
                except httpx.TransportError:
                    return
                except AssertionError as exc:
                    self.errors.append(f"live read: {exc}")
                    return
                with self._lock:
                    self.report.live_reads += 1
                    if seen.sha is not None and seen.sha not in self.keys[key].sent:
                        self.errors.append(f"live read of {key}: {seen.size} bytes that no writer sent")

    def _load_then_kill(self, server: Server, cycle: int, rng: random.Random) -> None:
        stop = threading.Event()
        seed = self.config.seed * 1_000_003 + cycle * 1000
        threads = [
            threading.Thread(
                target=self._writer, args=(server, i, stop, random.Random(seed + i)), daemon=True
            )
            for i in range(self.config.writers)
        ] + [
            threading.Thread(
                target=self._reader, args=(server, stop, random.Random(seed + 500 + i)), daemon=True
            )
            for i in range(self.config.readers)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(*self.config.load_seconds))
        self.rig.kill(server)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
            assert not thread.is_alive(), "a client hung after the kill"

    # --- the checks

    def _verify(self, server: Server) -> None:
        report = self.report
        with server.client() as http:
            for key, state in self.keys.items():
                seen = fetch(http, self.store_id, key)
                found = seen.sha
                allowed: dict[str | None, Value | None] = {
                    state.acked.raw_sha if state.acked else None: state.acked
                }
                if state.pending is not None:
                    op, value = state.pending
                    allowed[value.raw_sha if value else None] = value
                assert found in allowed, (
                    f"{key}: found {seen.size} bytes {found and found[:12]}, expected one of "
                    f"{[v.label if v else 'absent' for v in allowed.values()]} (pending {state.pending})"
                )
                now = allowed[found]
                if state.pending is not None:
                    op, value = state.pending
                    if op == "put":
                        landed = now is value
                        report.in_flight["put landed" if landed else "put lost"] += 1
                        self.expected_writes += landed
                    elif state.acked is None:
                        report.in_flight["delete of nothing"] += 1
                    else:
                        landed = now is None
                        report.in_flight["delete landed" if landed else "delete lost"] += 1
                        self.expected_deletes += landed
                state.acked, state.pending = now, None
                report.checks += 1
                if now is not None:
                    # As stored: the bytes exactly as sent, with their Content-Encoding.
                    stored = fetch(http, self.store_id, key, accept_encoding="gzip, br")
                    assert (stored.sha, stored.encoding) == (now.stored_sha, now.encoding), f"{key} as stored"
            present = {k: s.acked.stored_size for k, s in self.keys.items() if s.acked is not None}
            listed = all_keys(http, self.store_id)
            assert listed == present, f"listing differs: {sorted(set(listed.items()) ^ set(present.items()))}"
            got = stats(http, self.store_id)
            assert got["storageBytes"] == sum(present.values())
            assert (got["writeCount"], got["deleteCount"]) == (self.expected_writes, self.expected_deletes)
            report.final_records = len(present)
            report.final_bytes = sum(present.values())

    def _check_errors(self) -> None:
        assert not self.errors, "\n".join(self.errors[:20])

    def run(self) -> CrashReport:
        cfg = self.config
        rng = random.Random(cfg.seed)
        began = time.monotonic()
        server = self.rig.start(env=cfg.env, args=cfg.args)
        with server.client() as http:
            response = http.post("/key-value-stores", params={"name": f"crash-{cfg.seed}"})
            assert response.status_code in (200, 201), response.text
            self.store_id = response.json()["data"]["id"]
        for cycle in range(cfg.cycles):
            self._load_then_kill(server, cycle, rng)
            self._check_errors()
            assert self.rig.integrity_problems() == [], f"after kill {cycle + 1}"
            server = self.rig.start(env=cfg.env, args=cfg.args)
            self._verify(server)
            self.report.cycles += 1
        # Pretend the last crash was long ago: the restart must clear what the crashes left unreferenced.
        self.rig.stop(server)
        self.rig.age_leftovers(UPLOAD_MAX_AGE_MS / 1000 + HOUR)
        server = self.rig.start(env=cfg.env, args=cfg.args)
        try:
            tidy = wait_until(lambda: not self.rig.leftovers(), 30)
            self._verify(server)
        finally:
            self.rig.stop(server)
        assert tidy, self.rig.leftovers()[:20]
        assert self.rig.leftovers() == []
        assert self.rig.integrity_problems() == []
        self.report.seconds = time.monotonic() - began
        return self.report
