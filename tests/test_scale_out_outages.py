"""Outages under a scale-out node: PostgreSQL and SeaweedFS are stopped, started, paused and resumed with load
on the node, which answers 503 within its backend timeout, loses no acknowledged write and serves again once
the backend is back.

They run on their own PostgreSQL and SeaweedFS (started for this module), so the session's shared ones,
which other modules use, are never disturbed. Figures (detection and recovery times, the slowest request
during an outage) are printed after the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from satchel.errors import Unavailable
from satchel.settings import S3Settings
from satchel.storage.blobs.s3 import S3Blobs
from satchel.storage.housekeeping import every
from tests.conftest import Server, start_server, stop_server
from tests.harness.postgres import Postgres, start_postgres, stop_postgres
from tests.harness.scaleout import (
    BACKEND_TIMEOUT,
    INLINE_MAX,
    LARGE,
    RECOVERY_DEADLINE,
    TIMEOUT_SLACK,
    assert_no_internal_errors,
    body_for,
    http_client,
    measured,
    unique,
)
from tests.harness.seaweed import Seaweed, start_seaweed, stop_seaweed

pytestmark = pytest.mark.timeout(120)


# --- outages: the database or the object store goes away under load, and comes back


@dataclass
class Own:
    """This module's own PostgreSQL and SeaweedFS, which the outage tests stop and start."""

    postgres: Postgres
    seaweed: Seaweed
    root: Path


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Own]:
    root = tmp_path_factory.mktemp("own")
    with ThreadPoolExecutor(2) as pool:
        pg = pool.submit(start_postgres, root / "postgres")
        sw = pool.submit(start_seaweed, root / "seaweed")
        postgres, seaweed = pg.result(), sw.result()
    yield Own(postgres, seaweed, root)
    stop_postgres(postgres)
    stop_seaweed(seaweed)


@pytest.fixture(scope="module")
def outage_node(request: pytest.FixtureRequest, own: Own) -> Iterator[tuple[str, Server]]:
    """A node on this module's own backends, for the combination the test names (indirect parameter)."""
    combo: str = request.param
    name = "o" + uuid.uuid4().hex[:10]
    env = {
        "SATCHEL_DATABASE": own.postgres.create_database(name),
        "SATCHEL_POSTGRES__TIMEOUT_SECONDS": str(BACKEND_TIMEOUT),
        "SATCHEL_S3__TIMEOUT_SECONDS": str(BACKEND_TIMEOUT),
    }
    if combo.endswith("+s3"):
        env.update(own.seaweed.env(), SATCHEL_BLOB_STORE=own.seaweed.blob_store_url(name))
    node = start_server(own.root / combo.replace("+", "-") / "data", env=env)
    yield combo, node
    stop_server(node)
    assert_no_internal_errors(node)


@dataclass
class Outcome:
    key: str
    size: int
    method: str
    status: int  # 0: no HTTP answer at all
    began: float
    ended: float
    error: dict[str, Any] | None = None
    mismatch: bool = False  # a 200 whose body was not the one written


class Load:
    """Threads writing fresh keys (small and large bodies in turn) and reading back what they wrote."""

    def __init__(self, node: Server, store_id: str, *, threads: int = 3, large_every: int = 2) -> None:
        self.node = node
        self.store_id = store_id
        self.threads = threads
        self.large_every = large_every
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> Load:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)
            assert not worker.is_alive()

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def _run(self, n: int) -> None:
        mine: list[tuple[str, int]] = []
        with http_client(self.node) as http:
            i = 0
            while not self._stop.is_set():
                key = unique(f"t{n}-{i}")
                size = LARGE + i if i % self.large_every == 0 else 300 + i
                written = self._call(http, "PUT", key, size)
                self._record(written)
                if written.status == 201:
                    mine.append((key, size))
                if mine:
                    old_key, old_size = mine[(i * 7) % len(mine)]
                    self._record(self._call(http, "GET", old_key, old_size))
                i += 1

    def _call(self, http: httpx.Client, method: str, key: str, size: int) -> Outcome:
        url = f"/key-value-stores/{self.store_id}/records/{key}"
        began = time.monotonic()
        try:
            if method == "PUT":
                answer = http.put(url, content=body_for(key, size), headers={"content-type": "x/y"})
            else:
                answer = http.get(url)
        except httpx.TransportError as exc:
            return Outcome(key, size, method, 0, began, time.monotonic(), {"transport": repr(exc)})
        outcome = Outcome(key, size, method, answer.status_code, began, time.monotonic())
        if answer.status_code >= 300:
            try:
                outcome.error = answer.json()
            except ValueError:
                outcome.error = {"raw": answer.text[:500]}
        elif method == "GET":
            outcome.mismatch = answer.content != body_for(key, size)
        return outcome

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def wait_for(
        self,
        match: Callable[[Outcome], bool],
        *,
        after: float,
        deadline: float,
        answered: bool = False,
        count: int = 1,
    ) -> Outcome:
        """The first outcome that matches among those sent (or, with `answered`, answered) after `after`, once
        `count` of them have; polled for up to `deadline` seconds."""
        limit = time.monotonic() + deadline
        while True:
            found = [
                outcome
                for outcome in self.snapshot()
                if (outcome.ended if answered else outcome.began) >= after and match(outcome)
            ]
            if len(found) >= count:
                return found[0]
            assert time.monotonic() < limit, f"{len(found)} of {count} such outcomes in time"
            time.sleep(0.01)


def is_unavailable(outcome: Outcome) -> bool:
    return outcome.status == 503


def check_outcomes(outcomes: list[Outcome], *, backend: str, label: str) -> None:
    """Every answer is a success or a 503 with the API's envelope, in bounded time; no 500, no torn read."""
    assert outcomes
    bound = BACKEND_TIMEOUT + TIMEOUT_SLACK
    measured(f"slowest_request[{label}]", max(o.ended - o.began for o in outcomes))
    slow = [o for o in outcomes if o.ended - o.began > bound]
    assert not slow, f"{len(slow)} requests took over {bound} s, e.g. {slow[:3]}"
    for outcome in outcomes:
        assert outcome.status in (200, 201, 503), outcome
        assert not outcome.mismatch, outcome
        if outcome.status == 503:
            error = (outcome.error or {}).get("error")
            assert isinstance(error, dict), outcome
            assert error["type"] == "service-unavailable", outcome
            assert backend in error["message"], outcome
            assert "try again" in error["message"], outcome


def check_durable(node: Server, store_id: str, outcomes: list[Outcome]) -> None:
    """Every acknowledged write reads back whole; a write that got a 503 is either absent or whole; the
    key listing agrees with the records."""
    with http_client(node) as http:
        listed: dict[str, int] = {}
        after: dict[str, str] = {}
        while True:
            page = http.get(f"/key-value-stores/{store_id}/keys", params=after)
            assert page.status_code == 200, page.text
            data = page.json()["data"]
            listed.update((item["key"], item["size"]) for item in data["items"])
            if not data["isTruncated"]:
                break
            after = {"exclusiveStartKey": data["nextExclusiveStartKey"]}
        sizes = {o.key: o.size for o in outcomes if o.method == "PUT"}
        for key, size in listed.items():
            assert key.startswith("probe-") or sizes.get(key) == size, (key, size)
        assert {o.key for o in outcomes if o.method == "PUT" and o.status == 201} <= set(listed)
        for outcome in outcomes:
            if outcome.method != "PUT":
                continue
            got = http.get(f"/key-value-stores/{store_id}/records/{outcome.key}")
            if outcome.status == 201:
                assert got.status_code == 200, (outcome, got.text)
                assert got.content == body_for(outcome.key, outcome.size), outcome
            else:
                assert got.status_code in (200, 404), (outcome, got.text)
                if got.status_code == 200:
                    assert got.content == body_for(outcome.key, outcome.size), outcome


def first_success_after(node: Server, store_id: str, since: float, *, large: bool) -> float:
    """Seconds from `since` until a fresh write (and its read) through the node succeeds; polled."""
    with http_client(node) as http:
        while True:
            key = unique("probe")
            value = body_for(key, LARGE if large else 100)
            put = http.put(f"/key-value-stores/{store_id}/records/{key}", content=value)
            if put.status_code == 201:
                got = http.get(f"/key-value-stores/{store_id}/records/{key}")
                assert (got.status_code, got.content) == (200, value)
                return time.monotonic() - since
            assert put.status_code == 503, put.text
            assert time.monotonic() - since < RECOVERY_DEADLINE, "the node did not recover by itself"
            time.sleep(0.02)


def new_store(node: Server) -> str:
    with http_client(node) as http:
        made = http.post("/key-value-stores", params={"name": unique("outage")})
        assert made.status_code == 201
        return str(made.json()["data"]["id"])


@pytest.mark.slow
@pytest.mark.parametrize("outage_node", ["postgres+s3", "postgres+files"], indirect=True)
def test_database_outage_under_load(own: Own, outage_node: tuple[str, Server]) -> None:
    combo, node = outage_node
    store_id = new_store(node)
    try:
        with Load(node, store_id) as load:
            load.wait_for(lambda o: o.status == 201 and o.size > INLINE_MAX, after=0, deadline=10)
            time.sleep(0.5)  # some load before the outage
            own.postgres.stop()
            stopped = time.monotonic()
            first = load.wait_for(
                is_unavailable, after=stopped, deadline=BACKEND_TIMEOUT + TIMEOUT_SLACK, answered=True
            )
            measured(f"database_outage_detected[{combo}]", first.ended - stopped)
            # The outage goes on a while under load; then the database comes back on its port and data.
            time.sleep(1.5)
            restarting = time.monotonic()
            # Every request sent and answered while the database was down got a 503.
            during = [o for o in load.snapshot() if stopped <= o.began and o.ended <= restarting]
            assert len(during) >= 3, during
            assert all(o.status == 503 for o in during), during
            own.postgres.start()
            back = time.monotonic()
            measured(f"database_recovery[{combo}]", first_success_after(node, store_id, back, large=True))
            # The load itself succeeds again too.
            load.wait_for(lambda o: o.status == 201, after=time.monotonic(), deadline=RECOVERY_DEADLINE)
            time.sleep(0.5)
    finally:
        own.postgres.start()
    outcomes = load.snapshot()
    check_outcomes(outcomes, backend="database", label=f"database_outage[{combo}]")
    assert sum(o.status == 503 for o in outcomes) >= 1
    assert sum(o.status == 201 and o.began > back for o in outcomes) >= 1
    check_durable(node, store_id, outcomes)
    # Said in lines, not in a traceback at every retry of asyncpg's pool (25 lines each, 8 in 7 s).
    port = node.base_url.rsplit(":", 1)[1]
    said = (node.data_dir.parent / f"server-{port}.log").read_text()
    assert "Failed to restore the pool connection floor" in said
    assert "Traceback" not in said


@pytest.mark.slow
@pytest.mark.parametrize("outage_node", ["postgres+s3"], indirect=True)
def test_object_store_outage_under_load(own: Own, outage_node: tuple[str, Server]) -> None:
    _, node = outage_node
    store_id = new_store(node)
    try:
        with Load(node, store_id) as load:
            load.wait_for(lambda o: o.status == 201 and o.size > INLINE_MAX, after=0, deadline=10)
            time.sleep(0.5)
            own.seaweed.stop()
            stopped = time.monotonic()
            first = load.wait_for(
                is_unavailable, after=stopped, deadline=BACKEND_TIMEOUT + TIMEOUT_SLACK, answered=True
            )
            measured("object_store_outage_detected", first.ended - stopped)
            # Small records live in the database and still work meanwhile.
            small = load.wait_for(
                lambda o: o.method == "PUT" and o.size <= INLINE_MAX and o.status == 201,
                after=first.ended,
                deadline=BACKEND_TIMEOUT + TIMEOUT_SLACK,
            )
            assert small.status == 201
            time.sleep(BACKEND_TIMEOUT + 0.5)  # long enough for large requests sent meanwhile to give up
            # At least two of them answered (an outcome is kept once answered): on a slow machine the sleep
            # alone may leave only one.
            load.wait_for(
                lambda o: o.size > INLINE_MAX,
                after=stopped,
                deadline=2 * (BACKEND_TIMEOUT + TIMEOUT_SLACK),
                count=2,
            )
            restarting = time.monotonic()
            # Every large request sent and answered while the store was down got a 503.
            large_during = [
                o
                for o in load.snapshot()
                if stopped <= o.began and o.ended <= restarting and o.size > INLINE_MAX
            ]
            assert len(large_during) >= 2, large_during
            assert all(o.status == 503 for o in large_during), large_during
            own.seaweed.start()
            back = time.monotonic()
            measured("object_store_recovery", first_success_after(node, store_id, back, large=True))
            load.wait_for(
                lambda o: o.status == 201 and o.size > INLINE_MAX,
                after=time.monotonic(),
                deadline=RECOVERY_DEADLINE,
            )
            time.sleep(0.5)
    finally:
        own.seaweed.start()
    outcomes = load.snapshot()
    check_outcomes(outcomes, backend="object store", label="object_store_outage")
    check_durable(node, store_id, outcomes)


@pytest.mark.slow
@pytest.mark.parametrize("outage_node", ["postgres+s3"], indirect=True)
def test_object_store_frozen_answers_within_timeout(own: Own, outage_node: tuple[str, Server]) -> None:
    _, node = outage_node
    store_id = new_store(node)
    stored = body_for("stored", LARGE)
    with http_client(node) as http:
        url = f"/key-value-stores/{store_id}/records"
        assert http.put(f"{url}/stored", content=stored).status_code == 201
        own.seaweed.pause()
        try:
            # A frozen store accepts connections and never answers: the node gives up after its timeout.
            for method, key in (("PUT", "fresh"), ("GET", "stored")):
                began = time.monotonic()
                if method == "PUT":
                    answer = http.put(f"{url}/{key}", content=body_for(key, LARGE))
                else:
                    answer = http.get(f"{url}/{key}")
                took = time.monotonic() - began
                measured(f"object_store_frozen_{method}_answered", took)
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"]["type"] == "service-unavailable"
                assert answer.headers["retry-after"] == "1"
                assert took < BACKEND_TIMEOUT + TIMEOUT_SLACK
            small = http.put(f"{url}/small", content=b"inline")
            assert small.status_code == 201
        finally:
            own.seaweed.resume()
        resumed = time.monotonic()
        measured("object_store_frozen_recovery", first_success_after(node, store_id, resumed, large=True))
        got = http.get(f"{url}/stored")
        assert (got.status_code, got.content) == (200, stored)
        assert http.get(f"{url}/fresh").status_code in (200, 404)


def test_object_store_refusing_gives_up_within_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The S3 timeout bounds a request whole, retries and their backoff included, when the store refuses.

    In-process and without a server (a port nobody listens on), so many requests show the spread: obstore's
    jittered backoff alone used to carry requests half as long again past the timeout.
    """
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "satchel-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "satchel-test-secret")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    timeout = 1.0
    blobs = S3Blobs.from_url(
        f"s3://refused?endpoint=http://127.0.0.1:{port}", S3Settings(timeout_seconds=timeout)
    )

    async def timed(operation: Callable[[], Awaitable[object]]) -> float:
        began = time.monotonic()
        with pytest.raises(Unavailable):
            await operation()
        return time.monotonic() - began

    async def read() -> None:
        async for _ in blobs.read("missing"):
            pass

    async def put() -> None:
        async def body() -> AsyncIterator[bytes]:
            yield b"x" * 1000

        await blobs.put("new", body())

    async def run() -> list[float]:
        try:
            operations = [read, put, lambda: blobs.delete(["gone"])] * 10
            return list(await asyncio.gather(*(timed(op) for op in operations)))
        finally:
            await blobs.close()

    took = asyncio.run(run())
    measured("object_store_refused_slowest", max(took))
    assert max(took) < timeout + 0.25, sorted(took)


def test_housekeeping_during_an_outage_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """A housekeeping job whose backend does not answer (the usage flush, each second, in every process) says
    so in one warning, without the 40-line traceback it logged at ERROR each time, and not again at every
    tick while the outage lasts (at most once in 30 s), and keeps its schedule."""
    calls = 0

    async def flush() -> None:
        nonlocal calls
        calls += 1
        raise Unavailable("The database does not answer; try again.")

    async def run() -> None:
        task = asyncio.create_task(every(0.01, flush, first=0))
        await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.INFO, logger="satchel.storage.housekeeping"):
        asyncio.run(run())
    assert calls >= 3
    logged = [(r.levelno, r.exc_info) for r in caplog.records]
    assert logged == [(logging.WARNING, None)]
    assert "flush: The database does not answer" in caplog.records[0].getMessage()
