"""`satchel backup` and `satchel restore`: a backup taken from a running server under write load restores
every write acknowledged before the backup started, with its exact body; damaged backups and occupied data
dirs are refused with a message saying why."""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import Server, start_server, stop_server
from tests.harness.cli import cli_command, run_cli

# Bodies over 1 KiB go to blob files, so the load makes both inline records and blobs. A grace of 0 unlinks a
# replaced blob at the sweeper's next tick: the backup must pin or retake what it copies, not rely on a grace.
LOAD_ENV = {"SATCHEL_INLINE_MAX_BYTES": "1024", "SATCHEL_BLOB_GRACE_SECONDS": "0"}
WRITERS = 3
KEYS_PER_WRITER = (
    25  # each writer overwrites its own keys over and over (so their old blobs die), and adds new ones
)


@dataclass
class Version:
    body: bytes
    acked_at: float | None = None  # time.time() when the server answered 2xx; None: not acknowledged


@dataclass
class Load:
    """What the writers sent: every version of every key in order, and the dataset pushes."""

    versions: dict[str, list[Version]] = field(default_factory=dict)
    items: list[tuple[int, float | None]] = field(default_factory=list)  # item number, acked_at
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _body(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice((50, 700, 3000, 40_000)))


def _write_records(server: Server, load: Load, writer: int) -> None:
    rng = random.Random(writer)
    n = 0
    try:
        with server.client() as http:
            while not load.stop.is_set():
                key = f"w{writer}-{n % KEYS_PER_WRITER}" if n % 2 else f"w{writer}-new-{n}"
                version = Version(_body(rng))
                with load.lock:
                    load.versions.setdefault(key, []).append(version)
                response = http.put(
                    f"/key-value-stores/~load/records/{key}",
                    content=version.body,
                    headers={"content-type": "application/octet-stream"},
                )
                assert response.status_code in (200, 201), response.text
                version.acked_at = time.time()
                n += 1
    except BaseException as error:  # handed to the test thread, which fails with it
        load.errors.append(error)


def _push_items(server: Server, load: Load) -> None:
    n = 0
    try:
        with server.client() as http:
            while not load.stop.is_set():
                entry: tuple[int, float | None] = (n, None)
                with load.lock:
                    load.items.append(entry)
                response = http.post("/datasets/~load-items/items", json=[{"n": n, "pad": "x" * (n % 300)}])
                assert response.status_code == 201, response.text
                with load.lock:
                    load.items[n] = (n, time.time())
                n += 1
    except BaseException as error:  # handed to the test thread, which fails with it
        load.errors.append(error)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("backup") / "data", env=LOAD_ENV)
    yield server
    stop_server(server)


def _seed_other_kinds(server: Server) -> dict[str, str]:
    """A request queue with requests and a run: what lives in the database beside records and items."""
    with server.client() as http:
        http.post("/key-value-stores", params={"name": "load"}).raise_for_status()
        http.post("/datasets", params={"name": "load-items"}).raise_for_status()
        http.post("/request-queues", params={"name": "load-queue"}).raise_for_status()
        for i in range(5):
            added = http.post("/request-queues/~load-queue/requests", json={"url": f"http://ex.com/{i}"})
            assert added.status_code == 201, added.text
        run = http.post("/acts/~backup-actor/runs", json={"start": "yes"})
        assert run.status_code == 201, run.text
        return {"run": run.json()["data"]["id"]}


def test_backup_under_write_load_restores_every_acknowledged_write(loaded: Server, tmp_path: Path) -> None:
    seeded = _seed_other_kinds(loaded)
    load = Load()
    threads = [threading.Thread(target=_write_records, args=(loaded, load, w)) for w in range(WRITERS)]
    threads.append(threading.Thread(target=_push_items, args=(loaded, load)))
    for thread in threads:
        thread.start()
    try:
        while sum(len(v) for v in load.versions.values()) < 300 and not load.errors:
            time.sleep(0.05)
        backup = tmp_path / "backup"
        started = time.time()
        taking = subprocess.run(
            cli_command("backup", str(backup), data_dir=loaded.data_dir),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        ended = time.time()
        time.sleep(0.3)  # writes go on a little after, too
    finally:
        load.stop.set()
        for thread in threads:
            thread.join()
    assert not load.errors, load.errors
    assert taking.returncode == 0, taking.stderr
    assert "Backed up" in taking.stdout
    assert taking.stderr == ""  # no progress bar when stderr is not a terminal
    acked_during = [
        v for vs in load.versions.values() for v in vs if v.acked_at and started < v.acked_at < ended
    ]
    assert acked_during, "the backup ran while writes were acknowledged"

    manifest = json.loads((backup / "manifest.json").read_text())
    # The moment of the database snapshot, after the process started: every write acknowledged before it is
    # in the backup, a stronger claim than "before the backup started" (and one a copy of the database file
    # without its WAL fails).
    snapshot_at = datetime.fromisoformat(manifest["created_at"]).timestamp()
    assert started < snapshot_at < ended
    assert manifest["counts"]["requests"] == 5
    assert manifest["counts"]["runs"] == 1
    assert manifest["blob_count"] == len(list((backup / "blobs").glob("*/*")))
    assert manifest["blob_count"] > 0

    # Refused while the server runs on the data dir, even with --force.
    busy = run_cli("restore", str(backup), "--force", data_dir=loaded.data_dir, ok=False)
    assert "stop the server first" in busy.stderr

    restored_dir = tmp_path / "restored"
    done = run_cli("restore", str(backup), data_dir=restored_dir)
    assert "Restored" in done.stdout
    restored = start_server(restored_dir)
    try:
        _check_records(restored, load, snapshot_at)
        _check_items(restored, load, snapshot_at)
        with restored.client() as http:
            queue = http.get("/request-queues/~load-queue").json()["data"]
            assert queue["totalRequestCount"] == 5
            assert http.get(f"/actor-runs/{seeded['run']}").json()["data"]["status"] == "RUNNING"
            run_input = http.get(f"/actor-runs/{seeded['run']}/key-value-store/records/INPUT")
            assert run_input.json() == {"start": "yes"}
    finally:
        stop_server(restored)


def _check_records(server: Server, load: Load, moment: float) -> None:
    """Each key acknowledged before `moment` holds that version or one its writer sent after it."""
    checked = 0
    with server.client() as http:
        for key, versions in load.versions.items():
            before = [i for i, v in enumerate(versions) if v.acked_at is not None and v.acked_at < moment]
            if not before:
                continue
            response = http.get(f"/key-value-stores/~load/records/{key}")
            assert response.status_code == 200, (key, response.text)
            allowed = {v.body for v in versions[before[-1] :]}
            found = response.content in allowed  # (not asserted directly: pytest would print the bodies)
            assert found, f"{key}: not a version acknowledged before the backup, or later"
            checked += 1
    assert checked >= 100


def _check_items(server: Server, load: Load, moment: float) -> None:
    """Every item acknowledged before `moment` is there, in order, and nothing that was not sent."""
    acked = [n for n, at in load.items if at is not None and at < moment]
    assert acked
    with server.client() as http:
        items = http.get("/datasets/~load-items/items", params={"limit": 100_000}).json()
    numbers = [item["n"] for item in items]
    assert numbers == list(range(len(numbers)))  # a prefix of what was pushed, in order
    assert len(numbers) >= len(acked)
    assert all(item == {"n": item["n"], "pad": "x" * (item["n"] % 300)} for item in items)


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "small-data", env={"SATCHEL_INLINE_MAX_BYTES": "100"})
    with server.client() as http:
        http.post("/key-value-stores", params={"name": "s"}).raise_for_status()
        for i in range(3):
            http.put(f"/key-value-stores/~s/records/k{i}", content=bytes([i]) * 5000).raise_for_status()
    yield server
    stop_server(server)


def test_a_backup_missing_a_blob_is_refused(small: Server, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    run_cli("backup", str(backup), data_dir=small.data_dir)
    blobs = sorted((backup / "blobs").glob("*/*"))
    assert len(blobs) == 3
    blobs[1].unlink()
    refused = run_cli("restore", str(backup), data_dir=tmp_path / "target", ok=False)
    assert "The backup is damaged: 1 of its 3 blob files are missing" in refused.stderr
    assert blobs[1].name in refused.stderr
    assert not (tmp_path / "target").exists()

    blobs[1].write_bytes(b"short")  # present, but not the size its record says
    refused = run_cli("restore", str(backup), data_dir=tmp_path / "target", ok=False)
    assert "not the size their records say" in refused.stderr

    (backup / "manifest.json").unlink()  # a backup that never finished
    refused = run_cli("restore", str(backup), data_dir=tmp_path / "target", ok=False)
    assert "not a finished Satchel backup" in refused.stderr


def test_a_data_dir_that_lost_a_blob_is_not_backed_up_as_if_whole(small: Server, tmp_path: Path) -> None:
    """A named blob found missing by two snapshots in a row is lost, not deleted by the sweeper meanwhile."""
    lost = sorted((small.data_dir / "blobs").glob("[0-9a-f][0-9a-f]/*"))[0]
    lost.unlink()
    refused = run_cli("backup", str(tmp_path / "backup"), data_dir=small.data_dir, ok=False)
    assert "The data dir is damaged: 1 blob files its records name are missing" in refused.stderr
    assert lost.name in refused.stderr
    assert not (tmp_path / "backup").exists()  # a failed backup leaves no half of itself
    assert list((small.data_dir / "blobs" / "tmp").glob("*-backup")) == []  # the pins went with it


def test_restore_refuses_a_non_empty_data_dir_unless_forced(small: Server, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    run_cli("backup", str(backup), data_dir=small.data_dir)
    with small.client() as http:  # a change after the backup, which restoring undoes
        http.put("/key-value-stores/~s/records/k0", content=b"later").raise_for_status()
    stop_server(small)

    refused = run_cli("restore", str(backup), data_dir=small.data_dir, ok=False)
    assert "is not empty" in refused.stderr
    assert "--force" in refused.stderr
    assert run_cli("backup", str(backup), data_dir=small.data_dir, ok=False).stderr.count(
        "not an empty folder"
    )

    run_cli("restore", str(backup), "--force", data_dir=small.data_dir)
    assert sorted(p.name for p in small.data_dir.parent.iterdir() if p.name.startswith(".")) == []
    again = start_server(small.data_dir)
    small.process = again.process  # the fixture stops this one
    with again.client() as http:
        assert http.get("/key-value-stores/~s/records/k0").content == b"\x00" * 5000
        assert http.get("/key-value-stores/~s/records/k2").content == b"\x02" * 5000


def test_restore_replaces_only_a_data_dir(small: Server, tmp_path: Path) -> None:
    """--force replaces a Satchel data dir, never a folder or file that a typo in --data-dir named."""
    backup = tmp_path / "backup.tar"
    run_cli("backup", str(backup), data_dir=small.data_dir)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep")
    refused = run_cli("restore", str(backup), "--force", data_dir=precious, ok=False)
    assert f"{precious} is not empty and is not a Satchel data dir (it holds no satchel.db)" in refused.stderr
    assert [p.name for p in precious.iterdir()] == ["thesis.txt"]
    notes = tmp_path / "notes.txt"
    notes.write_text("keep")
    refused = run_cli("restore", str(backup), "--force", data_dir=notes, ok=False)
    assert f"{notes} is a file" in refused.stderr
    assert notes.read_text() == "keep"
    refused = run_cli("restore", str(backup), data_dir=notes / "sub", ok=False)
    assert f"{notes / 'sub'} cannot be made: {notes} is not a folder." in refused.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing unpacked
    # A backup that cannot be written names the path given, not the scratch one beside it.
    refused = run_cli("backup", str(notes / "b.tar"), data_dir=small.data_dir, ok=False)
    assert refused.stderr.strip().endswith(f"Cannot write {notes / 'b.tar'}: Not a directory.")


def test_a_backup_as_one_archive_file(small: Server, tmp_path: Path) -> None:
    archive = tmp_path / "satchel.tar.gz"
    run_cli("backup", str(archive), data_dir=small.data_dir)
    assert archive.stat().st_mode & 0o077 == 0  # it holds the admin token
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no scratch folder left
    run_cli("restore", str(archive), data_dir=tmp_path / "restored")
    restored = start_server(tmp_path / "restored")
    try:
        with restored.client() as http:
            assert http.get("/key-value-stores/~s/records/k1").content == b"\x01" * 5000
    finally:
        stop_server(restored)

    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    refused = run_cli("restore", str(cut), data_dir=tmp_path / "other", ok=False)
    assert "cannot be unpacked as a gzipped tar file" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1  # not a line for each way of opening it
    assert not (tmp_path / "other").exists()


def test_backup_refuses_the_scale_out_engines(tmp_path: Path) -> None:
    refused = run_cli(
        "backup",
        str(tmp_path / "b"),
        env={"SATCHEL_DATABASE": "postgresql://satchel@db.internal/satchel"},
        ok=False,
    )
    assert 'the section "Backups" of docs/deploy.md' in refused.stderr
    refused = run_cli(
        "backup", str(tmp_path / "b"), "--blob-store", "s3://bucket?endpoint=http://x", ok=False
    )
    assert "docs/deploy.md" in refused.stderr
    assert not (tmp_path / "b").exists()
    deploy = (Path(__file__).parent.parent / "docs" / "deploy.md").read_text()
    assert "\n## Backups\n" in deploy
    assert "`satchel backup" in deploy
