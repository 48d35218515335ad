"""Several processes on one SQLite file, one writing for all: jobs handed to the lead over its socket run in
its writer and answer with their results or errors; the others take over when it stops, or dies."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from satchel.clock import PAUSE_SECONDS
from satchel.errors import NotFound, Unavailable
from satchel.service.record_cache import RecordCache
from satchel.settings import Settings
from satchel.storage.blobs.files import FileBlobs
from satchel.storage.factory import build_storage
from satchel.storage.feed import StampFeed
from satchel.storage.sqlite import write_process
from satchel.storage.sqlite.db import RECLAIM_PAGES, Database
from satchel.storage.sqlite.engine import SqliteEngine
from satchel.storage.sqlite.handoff import SOCKET_FILE
from satchel.storage.sqlite.link import ANSWER_SECONDS, IN_DOUBT, InDoubt, NoAnswer
from tests.harness.engine import Body, owned_store
from tests.harness.processes import gone, live_children, writing_process
from tests.harness.rigs import wait_until
from tests.harness.server import start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent


# Jobs are module-level functions, as the engine's are: the lead imports them by name.
def make_table(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER UNIQUE)")


def insert(conn: sqlite3.Connection, value: int) -> int:
    conn.execute("INSERT INTO t (x) VALUES (?)", (value,))
    return value


def connection_id(conn: sqlite3.Connection) -> int:
    """Which connection ran the job (the lead's loop-side one, or another)."""
    return id(conn)


def refuse(conn: sqlite3.Connection, value: int) -> None:
    conn.execute("INSERT INTO t (x) VALUES (?)", (value,))
    raise NotFound(f"no {value}")


def slow_insert(conn: sqlite3.Connection, value: int) -> int:
    time.sleep(2)
    conn.execute("INSERT INTO t (x) VALUES (?)", (value,))
    return value


def hung_insert(conn: sqlite3.Connection, values: list[int]) -> list[int]:
    """Rows written, then a wait inside the transaction (a disk that hangs), then more rows."""
    conn.execute("INSERT INTO t (x) VALUES (?)", (values[0],))
    time.sleep(4)
    conn.executemany("INSERT INTO t (x) VALUES (?)", [(value,) for value in values[1:]])
    return values


FULL, NORMAL = 2, 1  # PRAGMA synchronous: what a connection that fsyncs each commit runs with, and not


def synchronous(conn: sqlite3.Connection) -> int:
    """How the connection that ran the job commits."""
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


def stored(data_dir: Path) -> list[int]:
    with sqlite3.connect(data_dir / "satchel.db") as conn:
        return [x for (x,) in conn.execute("SELECT x FROM t ORDER BY x")]


def leads(db: Database) -> bool:
    assert db.handoff is not None
    return db.handoff.leading


async def opened(data_dir: Path, answer_seconds: float = ANSWER_SECONDS) -> Database:
    db = Database(data_dir, fsync=False, reserve_bytes=0, handoff=True, answer_seconds=answer_seconds)
    await db.open()
    return db


@contextlib.asynccontextmanager
async def handing_off(data_dir: Path, answer_seconds: float) -> AsyncIterator[Database]:
    """This process's database on a data dir another process leads, waiting `answer_seconds` for its answers;
    the table made and 1 stored through the lead."""
    db = await opened(data_dir, answer_seconds)
    try:
        await db.write(make_table)
        assert await db.write(insert, 1) == 1
        yield db
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def lead_and_other(data_dir: Path) -> AsyncIterator[tuple[Database, Database]]:
    """Two processes' databases on one data dir: the first opened leads, the second hands its writes to it."""
    lead = await opened(data_dir)
    other = await opened(data_dir)
    try:
        assert leads(lead)
        assert not leads(other)
        yield lead, other
    finally:
        await other.close()
        await lead.close()


def test_the_second_process_hands_its_writes_to_the_lead(tmp_path: Path) -> None:
    async def main() -> None:
        async with lead_and_other(tmp_path) as (lead, other):
            await other.write(make_table)
            called: list[int] = []
            results = await asyncio.gather(
                *(other.write(insert, n, after=functools.partial(called.append, n)) for n in range(100))
            )
            assert results == list(range(100))
            assert sorted(called) == list(range(100))  # each after-commit call, in the sending process
            # The job ran on the lead's own writer connection, not on one of the other's.
            assert await other.write(connection_id) == id(lead.writer._loop_conn)
            assert other.writer._loop_conn is None
            # A job's error comes back as itself, and its change is undone alone.
            with pytest.raises(NotFound, match="no 500"):
                await other.write(refuse, 500, after=lambda: called.append(-1))
            with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
                await other.write(insert, 5)
            assert -1 not in called
            assert await lead.write(insert, 100) == 100
        assert stored(tmp_path) == list(range(101))

    asyncio.run(main())


def test_when_the_lead_stops_its_jobs_are_answered_and_another_process_leads(tmp_path: Path) -> None:
    async def main() -> None:
        lead = await opened(tmp_path)
        other = await opened(tmp_path)
        await other.write(make_table)
        assert not leads(other)
        # Writes in flight while the lead stops: it answers what it was sent, the rest go to the new lead.
        writes = [asyncio.ensure_future(other.write(insert, n)) for n in range(300)]
        await asyncio.sleep(0)
        await lead.close()
        writes += [asyncio.ensure_future(other.write(insert, n)) for n in range(300, 400)]
        assert await asyncio.gather(*writes) == list(range(400))
        assert leads(other)
        assert await other.write(connection_id) == id(other.writer._loop_conn)
        # A process opened now hands its writes to the new lead.
        third = await opened(tmp_path)
        assert not leads(third)
        assert await third.write(insert, 400) == 400
        await third.close()
        await other.close()
        assert stored(tmp_path) == list(range(401))

    asyncio.run(main())


LEAD_SCRIPT = """
import asyncio, sys
from pathlib import Path
from satchel.storage.sqlite.db import RECLAIM_PAGES, Database
from satchel.storage.sqlite.engine import SqliteEngine

async def main():
    db = Database(Path(sys.argv[1]), fsync=False, reserve_bytes=0, handoff=True)
    await db.open()
    print("leading" if db.handoff.leading else "not leading", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@contextlib.contextmanager
def leading_process(script: str, data_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process running `script`, once it leads the writes of the data dir; killed after."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        assert process.stdout.readline().strip() == "leading"
        yield process
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


@pytest.fixture
def lead_process(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    with leading_process(LEAD_SCRIPT, tmp_path) as process:
        yield process


def test_when_the_lead_dies_its_unanswered_jobs_are_in_doubt_and_the_next_write_leads(
    tmp_path: Path, lead_process: subprocess.Popen[str]
) -> None:
    async def main() -> None:
        other = await opened(tmp_path)
        try:
            assert not leads(other)
            await other.write(make_table)
            assert await other.write(insert, 1) == 1
            marked: list[int] = []
            slow = asyncio.ensure_future(other.write(slow_insert, 2, after=lambda: marked.append(2)))
            await asyncio.sleep(0.5)  # the lead is inside the job
            lead_process.send_signal(signal.SIGKILL)
            with pytest.raises(Unavailable, match="may or may not have been stored") as refused:
                await slow
            assert refused.value.message == IN_DOUBT
            # A change in doubt is announced all the same: caches in other processes must not keep the old.
            assert marked == [2]
            lead_process.wait()  # gone for good (while it exits, its socket may still take a connection)
            # The lock died with the lead: this process takes it at its next write.
            assert await other.write(insert, 3) == 3
            assert leads(other)
        finally:
            await other.close()
        assert stored(tmp_path) == [1, 3]  # the killed lead's job never committed
        assert not (tmp_path / SOCKET_FILE).exists()

    asyncio.run(main())


def test_a_job_sent_to_a_lead_already_dead_is_not_in_doubt_but_runs_under_the_next(
    tmp_path: Path, lead_process: subprocess.Popen[str]
) -> None:
    """The lead dies between two writes and this process has not yet seen its link close: the job cannot
    have reached the dead lead (the write to the link fails at once), so it goes to the next lead instead of
    coming back in doubt (a 503 for a change sent after the lead was gone)."""

    async def main() -> None:
        other = await opened(tmp_path)
        try:
            await other.write(make_table)
            assert await other.write(insert, 1) == 1
            lead_process.send_signal(signal.SIGKILL)
            lead_process.wait()  # blocks this loop: the link's end-of-file is not read before the next write
            assert other.handoff is not None
            assert other.handoff.link is not None
            assert other.handoff.link.open
            assert await other.write(insert, 2) == 2
            assert leads(other)
        finally:
            await other.close()
        assert stored(tmp_path) == [1, 2]

    asyncio.run(main())


DYING_LEAD_SCRIPT = (
    """
import os
from satchel.storage.sqlite import handoff

committed = handoff._Served._committed

def die_before_answering_a_record(self, message, done):
    if message[1].__name__ == "_put_record":
        os._exit(9)  # the record committed; the lead dies before its answer is sent
    committed(self, message, done)

handoff._Served._committed = die_before_answering_a_record
"""
    + LEAD_SCRIPT
)


def test_a_job_the_lead_does_not_answer_in_time_is_in_doubt_and_its_late_answer_reaches_nobody(
    tmp_path: Path, lead_process: subprocess.Popen[str]
) -> None:
    """The lead is held inside a job (a disk that hangs) past this process's bound: the write fails in doubt
    at the bound rather than wait for it. The job then commits whole; its late answer is read and dropped,
    not given to the write sent after it on the same link, which gets its own; and the link goes on."""

    async def main() -> None:
        # The late job takes 4 s; the write sent at 2 s waits for it, and is answered within its own 3 s.
        async with handing_off(tmp_path, answer_seconds=3) as other:
            assert other.handoff is not None
            link = other.handoff.link
            marked: list[int] = []
            # On the lead's writer thread, so that its loop goes on reading the link meanwhile.
            late = asyncio.ensure_future(
                other.write(hung_insert, [2, 3, 4], off_loop=True, after=lambda: marked.append(2))
            )
            await asyncio.sleep(2)
            after_it = asyncio.ensure_future(other.write(insert, 5))
            with pytest.raises(NoAnswer, match="may or may not have been stored") as refused:
                await late
            # Answered at the bound, while the lead is still inside the job: nothing of it is seen yet.
            assert stored(tmp_path) == [1]
            assert refused.value.status == 503
            assert isinstance(refused.value, Unavailable)
            # Perhaps committed: those reading through a cache look again.
            assert marked == [2]
            # The late job's answer comes first, and is not this one.
            assert not after_it.done()
            assert await after_it == 5
            assert marked == [2, 2]  # the late job committed, and said so once its answer came
            assert await other.write(insert, 6) == 6
            assert other.handoff.link is link
            assert not leads(other)
        assert stored(tmp_path) == [1, 2, 3, 4, 5, 6]  # the late job whole

    asyncio.run(main())


def test_while_the_lead_is_silent_writes_are_refused_at_once_and_not_sent(
    tmp_path: Path, lead_process: subprocess.Popen[str]
) -> None:
    """Once a job has gone unanswered past the bound, the next writes are not queued on the link to wait out
    the bound in turn: each is refused at once, not stored, until the lead answers again."""

    async def main() -> None:
        async with handing_off(tmp_path, answer_seconds=1) as other:
            lead_process.send_signal(signal.SIGSTOP)
            try:
                with pytest.raises(NoAnswer):
                    await other.write(insert, 2)
                refusals = []
                for value in range(3, 13):
                    with pytest.raises(Unavailable, match="was not stored") as refused:
                        await other.write(insert, value)
                    refusals.append(refused.value)
                assert not any(isinstance(refusal, InDoubt) for refusal in refusals)
                await asyncio.sleep(PAUSE_SECONDS)  # the job given up on waits through the lead's pause
            finally:
                lead_process.send_signal(signal.SIGCONT)
            # The late answer (a refusal: the job waited through the pause) ends the silence.
            for _ in range(100):
                with contextlib.suppress(Unavailable):
                    assert await other.write(insert, 13) == 13
                    break
                await asyncio.sleep(0.05)
            assert await other.write(insert, 14) == 14
            assert not leads(other)
        assert stored(tmp_path) == [1, 13, 14]  # nothing refused at once ever reached the lead

    asyncio.run(main())


def test_a_record_whose_commit_is_in_doubt_keeps_its_blob(tmp_path: Path) -> None:
    """The lead commits a large record and dies before it answers: the write is in doubt (a 503), but the
    record is stored, so the blob it names must stay (it used to be deleted as if the write had failed, which
    left a record whose body was gone)."""
    body = os.urandom(300 * 1024)  # past the inline limit: a blob file

    async def main() -> None:
        blobs = FileBlobs(tmp_path / "blobs", fsync=False)
        await blobs.open()
        engine = SqliteEngine(
            tmp_path, blobs, inline_max=1 << 17, max_record_bytes=1 << 30, reserve_bytes=0, handoff=True
        )
        await engine.open()
        try:
            store = await owned_store(engine, "doubt")
            with pytest.raises(Unavailable, match="may or may not have been stored"):
                await engine.records.write(
                    store.pk, "k", content_type="a", content_encoding=None, body=Body(body), now=1
                )
            record = await engine.records.read(store.pk, "k")
            assert record is not None
            assert b"".join([chunk async for chunk in record.stream()]) == body
        finally:
            await engine.close()
            await blobs.close()

    with leading_process(DYING_LEAD_SCRIPT, tmp_path):
        asyncio.run(main())


def hold(conn: sqlite3.Connection, seconds: float) -> None:
    """Holds the lead's writer (a disk that hangs): the jobs sent after it wait behind it."""
    time.sleep(seconds)


# A worker that hands the write process a record write, queued behind a job that holds its writer, and then
# dies (the test kills it) before the answer comes.
ORPHANING_SCRIPT = """
import asyncio, sys
from pathlib import Path
from satchel.storage.blobs.files import FileBlobs
from satchel.storage.sqlite.engine import SqliteEngine
from tests.harness.engine import Body
from tests.test_sqlite_handoff import hold

async def main():
    data_dir = Path(sys.argv[1])
    blobs = FileBlobs(data_dir / "blobs", fsync=False)
    await blobs.open()
    engine = SqliteEngine(
        data_dir, blobs, inline_max=1 << 17, max_record_bytes=1 << 20, reserve_bytes=0, handoff=True
    )
    await engine.open()
    assert not engine.db.handoff.leading
    held = asyncio.ensure_future(engine.db.write(hold, 3.0, off_loop=True))
    write = asyncio.ensure_future(
        engine.records.write(
            int(sys.argv[2]), "k", content_type="text/plain", content_encoding=None, body=Body(b"after"),
            now=2,
        )
    )
    await asyncio.sleep(0.3)  # both sent
    print("sent", flush=True)
    await asyncio.gather(held, write)

asyncio.run(main())
"""


def orphan_a_write(data_dir: Path, store_pk: int) -> None:
    """ORPHANING_SCRIPT run until its write is sent, then killed."""
    sender = subprocess.Popen(
        [sys.executable, "-c", ORPHANING_SCRIPT, str(data_dir), str(store_pk)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sender.stdout is not None
    try:
        assert sender.stdout.readline().strip() == "sent"
    finally:
        sender.kill()
        sender.wait()
        sender.stdout.close()


def test_a_record_the_write_process_commits_for_a_dead_worker_is_not_read_stale_from_a_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker hands the write process a record and dies before the answer (killed, say, after its client
    was answered in doubt); the write process commits it afterwards. Each worker's cache goes by the record's
    stamp, which only the sending worker moved, on the answer: so every worker that had read the record in the
    meantime (a worker started in the dead one's place too: opening the stamps happened before the commit)
    served the old body for good, and a compare-and-set against it failed for good. The process that commits
    moves the stamp now."""
    monkeypatch.chdir(ROOT)  # the write process imports `hold` from here
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("SATCHEL_DATA_DIR", str(tmp_path))
    lead = write_process.start()
    assert lead is not None

    async def main() -> None:
        storage = build_storage(Settings(data_dir=tmp_path), housekeeping=False)  # writes itself
        await storage.open()
        try:
            store = await owned_store(storage)
            await storage.records.write(
                store.pk, "k", content_type="text/plain", content_encoding=None, body=Body(b"before"), now=1
            )
            cache = RecordCache(storage.feed, max_bytes=1 << 20)

            async def cached() -> bytes | None:
                found = cache.get(store, "k")
                if found is None:
                    stamp = cache.stamp(store, "k")
                    found = await storage.records.read(store.pk, "k")
                    assert found is not None
                    cache.keep(store, "k", stamp, found)
                return found.inline

            await asyncio.to_thread(orphan_a_write, tmp_path, store.pk)
            # The worker started in its place opens the stamps: every record gets a new one.
            restarted = StampFeed(storage.feed.path, storage.feed.records_path)  # type: ignore[attr-defined]
            await restarted.open()
            await restarted.close()
            assert await cached() == b"before"  # the write process still holds the write
            assert await cached() == b"before"  # and it is kept

            async def committed() -> bool:
                found = await storage.records.read(store.pk, "k")
                return found is not None and found.inline == b"after"

            deadline = time.monotonic() + 20
            while not await committed():
                assert time.monotonic() < deadline, "the write process never committed the record"
                await asyncio.sleep(0.05)
            assert await cached() == b"after"
        finally:
            await storage.close()

    try:
        asyncio.run(main())
    finally:
        write_process.stop(lead)


def test_a_data_dir_too_deep_for_a_socket_path_still_hands_over(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)

    async def main() -> None:
        lead = await opened(deep)
        other = await opened(deep)
        try:
            assert not leads(other)
            await other.write(make_table)
            assert await other.write(connection_id) == id(lead.writer._loop_conn)
        finally:
            await other.close()
            await lead.close()

    asyncio.run(main())


def test_a_server_with_two_workers_writes_through_one_of_them(tmp_path: Path) -> None:
    """Records, dataset items and requests written on fresh connections (to whichever worker takes each)
    are all stored; one worker leads, and the other hands it its writes."""
    server = start_server(tmp_path / "data", args=("--workers", "2"), env={"SATCHEL_LOG_LEVEL": "info"})
    try:
        with server.client() as client:
            store = client.post("/key-value-stores", params={"name": "both"}).json()["data"]["id"]
            dataset = client.post("/datasets", params={"name": "both"}).json()["data"]["id"]
            queue = client.post("/request-queues", params={"name": "both"}).json()["data"]["id"]

        def write(n: int) -> None:
            # A connection per request, so that both workers take some.
            with server.client(limits=httpx.Limits(max_keepalive_connections=0)) as fresh:
                assert fresh.put(f"/key-value-stores/{store}/records/k{n:03d}", content=b"v%d" % n).is_success
                assert fresh.post(f"/datasets/{dataset}/items", json={"n": n}).is_success
                request = {"url": f"https://example.com/{n}", "uniqueKey": str(n)}
                added = fresh.post(f"/request-queues/{queue}/requests", json=request)
                assert added.is_success, added.text

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write, range(200)))
        with server.client() as client:
            keys = client.get(f"/key-value-stores/{store}/keys", params={"limit": 1000}).json()["data"]
            assert [k["key"] for k in keys["items"]] == [f"k{n:03d}" for n in range(200)]
            assert client.get(f"/key-value-stores/{store}/records/k123").content == b"v123"
            items = client.get(f"/datasets/{dataset}/items", params={"limit": 1000}).json()
            assert sorted(item["n"] for item in items) == list(range(200))
            assert client.get(f"/request-queues/{queue}").json()["data"]["totalRequestCount"] == 200
    finally:
        stop_server(server)
    log = next(tmp_path.glob("server-*.log")).read_text()
    # The process beside the workers leads, and both workers hand it their writes.
    assert log.count("writes for the server's other processes") == 1, log
    assert log.count("hands its writes to the process that leads") == 2, log
    assert writing_process(server.pid) is None  # stopped with the server
    assert not (server.data_dir / SOCKET_FILE).exists()


def test_a_write_the_stopped_writing_process_does_not_answer_gets_a_503_in_doubt(tmp_path: Path) -> None:
    """The process that writes for the workers is stopped: a record, a dataset push and a request added are
    answered 503 in doubt at write_process_timeout_seconds, not once it runs again. Having waited through its
    pause, those jobs are refused when it runs (nothing of them is stored: the record is the old one, whole),
    and the workers' links to it take the next writes."""
    server = start_server(
        tmp_path / "data",
        args=("--workers", "2"),
        env={"SATCHEL_LOG_LEVEL": "info", "SATCHEL_WRITE_PROCESS_TIMEOUT_SECONDS": "1"},
    )
    record, items, requests = (
        "/key-value-stores/~held/records/k",
        "/datasets/~held/items",
        "/request-queues/~held/requests",
    )
    old, new, newer = (os.urandom(300 * 1024) for _ in range(3))  # past the inline limit: blob files
    writer = writing_process(server.pid)
    assert writer is not None
    try:
        with server.client() as http:
            for kind in ("key-value-stores", "datasets", "request-queues"):
                assert http.post(f"/{kind}", params={"name": "held"}).is_success
            assert http.put(record, content=old).status_code == 201
            assert http.post(items, json=[{"n": 0}]).status_code == 201
            assert http.post(requests, json={"url": "https://example.com/0"}).is_success

            def attempt(send: str) -> tuple[httpx.Response, float]:
                started = time.monotonic()
                if send == "record":
                    answer = http.put(record, content=new)
                else:
                    with server.client(timeout=60) as own:  # a connection each: either worker may take it
                        if send == "items":
                            answer = own.post(items, json=[{"n": 1}])
                        else:
                            answer = own.post(requests, json={"url": "https://example.com/1"})
                return answer, time.monotonic() - started

            os.kill(writer, signal.SIGSTOP)
            try:
                with ThreadPoolExecutor(3) as pool:
                    answers = list(pool.map(attempt, ["record", "items", "request"]))
                for answer, took in answers:
                    assert answer.status_code == 503, answer.text
                    error = answer.json()["error"]
                    assert error["type"] == "service-unavailable"
                    assert "may or may not have been stored" in error["message"], error
                    assert answer.headers["retry-after"] == "1"
                    assert took < 10  # at the bound (1 s), not once the process runs again
                # The worker that had no answer sends it nothing more meanwhile: refused at once, not stored.
                refused = http.put(record, content=new)
                assert refused.status_code == 503
                assert "the change was not stored" in refused.json()["error"]["message"]
                time.sleep(PAUSE_SECONDS)  # the jobs wait through its pause
            finally:
                os.kill(writer, signal.SIGCONT)
            # Writes are taken again, by the same process over the same links.
            assert wait_until(lambda: http.put(f"{record}2", content=b"x").status_code == 201, 10, 0.2)
            # The jobs in doubt waited through the pause, so were refused: the record is the old one, whole.
            assert http.get(record).content == old
            assert http.put(record, content=newer).status_code == 201
            assert http.get(record).content == newer
            assert http.post(items, json=[{"n": 2}]).status_code == 201
            assert http.post(requests, json={"url": "https://example.com/2"}).is_success
            assert [item["n"] for item in http.get(items).json()] == [0, 2]
            queue = http.get("/request-queues/~held").json()["data"]
            assert queue["totalRequestCount"] == 2
    finally:
        stop_server(server)
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert "had no answer to a write within 1 s" in log, log
    assert log.count("writes for the server's other processes") == 1, log  # nobody took over


def test_when_the_writing_process_dies_a_worker_takes_over(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", args=("--workers", "2"), env={"SATCHEL_LOG_LEVEL": "info"})
    try:
        writer = writing_process(server.pid)
        assert writer is not None
        with server.client() as client:
            store = client.post("/key-value-stores", params={"name": "kept"}).json()["data"]["id"]
            assert client.put(f"/key-value-stores/{store}/records/before", content=b"1").is_success
            os.kill(writer, signal.SIGKILL)
            # Reaped (gone from /proc, not left a zombie until the server stops), and said in the log.
            assert gone(writer)
            # Fresh connections, so that both workers write: the first to write leads, the other hands over.
            for n in range(20):
                with server.client(limits=httpx.Limits(max_keepalive_connections=0)) as fresh:
                    written = fresh.put(f"/key-value-stores/{store}/records/after{n}", content=b"%d" % n)
                    assert written.is_success, written.text
            keys = client.get(f"/key-value-stores/{store}/keys").json()["data"]["items"]
            assert len(keys) == 21
            assert client.get(f"/key-value-stores/{store}/records/after7").content == b"7"
    finally:
        stop_server(server)
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert f"the writing process ({writer}) ended with code -9" in log, log
    leads = re.findall(r"process (\d+) writes for the server's other processes", log)
    assert leads[0] == str(writer), log
    assert len(leads) >= 2, log  # a worker, after the kill (and, as the server stops, perhaps the other one)


def test_when_the_worker_writing_for_the_others_dies_another_is_started(tmp_path: Path) -> None:
    """The writing process killed, then the worker that took over from it: granian starts a worker in its
    place, the other worker writes, and the server goes on (it used to stop altogether)."""
    server = start_server(tmp_path / "data", args=("--workers", "2"), env={"SATCHEL_LOG_LEVEL": "info"})
    log = next(tmp_path.glob("server-*.log"))
    try:
        writer = writing_process(server.pid)
        assert writer is not None
        os.kill(writer, signal.SIGKILL)
        # Gone before the next write: one that reached the dying process's socket would be in doubt (a 503,
        # as test_when_the_lead_dies_its_unanswered_jobs_are_in_doubt... checks), which is not this test's.
        assert gone(writer)
        with server.client() as client:
            store = client.post("/key-value-stores", params={"name": "kept"}).json()["data"]["id"]
            assert client.put(f"/key-value-stores/{store}/records/before", content=b"1").is_success
        lead = int(re.findall(r"process (\d+) writes for the server's other processes", log.read_text())[-1])
        assert lead != writer
        workers = live_children(server.pid)
        assert lead in workers, (lead, workers)
        os.kill(lead, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = live_children(server.pid)
            if lead not in now and len(now) == len(workers):
                break
            time.sleep(0.1)
        assert lead not in now, (lead, now)
        assert len(now) == len(workers), (workers, now)
        for n in range(20):
            with server.client(limits=httpx.Limits(max_keepalive_connections=0)) as fresh:
                written = fresh.put(f"/key-value-stores/{store}/records/after{n}", content=b"%d" % n)
                assert written.is_success, written.text
        with server.client() as client:
            assert len(client.get(f"/key-value-stores/{store}/keys").json()["data"]["items"]) == 21
    finally:
        stop_server(server)


def test_where_no_socket_can_be_made_each_process_writes_itself(tmp_path: Path) -> None:
    (tmp_path / SOCKET_FILE).mkdir()  # in the way: neither removed nor bound
    (tmp_path / SOCKET_FILE / "kept").touch()

    async def main() -> None:
        one = await opened(tmp_path)
        two = await opened(tmp_path)
        try:
            assert leads(one)
            assert leads(two)  # the lock was let go: the second found the same, and writes itself too
            await one.write(make_table)
            assert await two.write(connection_id) == id(two.writer._loop_conn)
            assert await one.write(insert, 1) == 1
            assert await two.write(insert, 2) == 2
        finally:
            await two.close()
            await one.close()
        assert stored(tmp_path) == [1, 2]

    asyncio.run(main())


def test_processes_that_fsync_never_hand_their_writes_to_a_lead_that_does_not(tmp_path: Path) -> None:
    """Two servers on one data dir with different durability: each kind elects its own lead, so a write
    acknowledged as fsynced was committed by a process that fsyncs."""

    async def main() -> None:
        quick = await opened(tmp_path)
        powered = Database(tmp_path, fsync=True, reserve_bytes=0, handoff=True)
        await powered.open()
        powered_too = Database(tmp_path, fsync=True, reserve_bytes=0, handoff=True)
        await powered_too.open()
        try:
            assert leads(quick)
            assert leads(powered)  # not handed to the quick lead
            assert not leads(powered_too)
            await quick.write(make_table)
            # The second fsyncing process hands over to the first one, which fsyncs, not to the quick lead.
            assert await powered_too.write(synchronous) == FULL
            assert powered_too.handoff is not None
            assert powered_too.handoff.link is not None
            assert await quick.write(synchronous) == NORMAL
            assert await powered_too.write(insert, 1) == 1
            assert await quick.write(insert, 2) == 2
        finally:
            await powered_too.close()
            await powered.close()
            await quick.close()
        assert stored(tmp_path) == [1, 2]

    asyncio.run(main())


def _fill_and_empty(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    conn.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(64 * 1024),) for _ in range(40 * 16)])
    conn.execute("DELETE FROM filler")


def test_only_the_lead_gives_free_pages_back(tmp_path: Path) -> None:
    """Every process ticks, but only the one that writes gives pages back: each of them doing it gave back
    as many times more, and read the free count on its serving loop."""

    async def main() -> None:
        async with lead_and_other(tmp_path) as (lead, other):
            await other.write(_fill_and_empty)  # handed to the lead
            assert await other.reclaim() == 0
            assert await lead.reclaim() == RECLAIM_PAGES

    asyncio.run(main())
