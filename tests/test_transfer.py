"""`satchel transfer`, as an operator moves an embedded Satchel to scale-out: everything the data dir held is
served by a node on PostgreSQL (and S3) afterwards, byte for byte, with the same ids, tokens, shares and
signed links; and what would lose data (a server still running, a database already in use) is refused."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from satchel.service.users import TOKEN_FILE
from satchel.storage import transfer
from satchel.storage.blobs.base import MARK_NAME
from satchel.storage.postgres.migrations import migrate_connection
from tests.conftest import Server, start_server, stop_server
from tests.harness.backends import Backends
from tests.harness.cli import cli_command, new_user, run_cli, run_cli_here
from tests.test_cli_postgres import query

LARGE = os.urandom(600 * 1024)  # past inline_max_bytes: a blob of its own
ITEMS = [{"n": n, "title": f"page {n}", "tags": ["a", "b"][: n % 3]} for n in range(2500)]  # two COPY batches


def _fill(server: Server) -> dict[str, Any]:
    """A little of everything a crawl leaves, and what a client of it would read back."""
    bob = new_user(server.data_dir, "bob")
    seen: dict[str, Any] = {"bob": bob, "base_url": server.base_url}
    with server.client() as api:
        store = api.post("/key-value-stores", params={"name": "crawl"}).json()["data"]
        seen["store"] = store["id"]
        records = {
            "INPUT": (b'{"start": "https://example.com"}', "application/json", None),
            "page.html": (gzip.compress(b"<p>hi</p>" * 100), "text/html", "gzip"),
            "shot": (LARGE, "image/png", None),
            "Z!-_.'()": (b"every character a key may hold", "text/plain", None),
        }
        for key, (body, content_type, encoding) in records.items():
            headers = {"content-type": content_type, **({"content-encoding": encoding} if encoding else {})}
            put = api.put(f"/key-value-stores/{store['id']}/records/{key}", content=body, headers=headers)
            assert put.status_code == 201, put.text
        # A large body replaced and one deleted: their old blobs are dead, and not copied.
        api.put(f"/key-value-stores/{store['id']}/records/old", content=LARGE[::-1])
        api.put(f"/key-value-stores/{store['id']}/records/old", content=b"small now")
        api.put(f"/key-value-stores/{store['id']}/records/gone", content=LARGE[:-1])
        api.delete(f"/key-value-stores/{store['id']}/records/gone")
        seen["keys"] = api.get(f"/key-value-stores/{store['id']}/keys").json()["data"]["items"]
        seen["records"] = {
            key: api.get(
                f"/key-value-stores/{store['id']}/records/{key}", headers={"accept-encoding": "gzip"}
            )
            for key in [*records, "old"]
        }
        run_cli_here("share", "crawl", "bob", "--read", data_dir=server.data_dir)

        dataset = api.post("/datasets", params={"name": "pages"}).json()["data"]
        assert api.post(f"/datasets/{dataset['id']}/items", json=ITEMS).status_code == 201
        seen["dataset"] = dataset["id"]

        queue = api.post("/request-queues", params={"name": "urls"}).json()["data"]
        for n in range(5):
            request = {"url": f"https://example.com/{n}", "uniqueKey": f"u{n}"}
            assert api.post(f"/request-queues/{queue['id']}/requests", json=request).status_code == 201
        locked = api.post(f"/request-queues/{queue['id']}/head/lock", params={"lockSecs": 600, "limit": 2})
        first, second = locked.json()["data"]["items"]
        handled = {**first, "handledAt": "2026-12-05T10:00:00.000Z"}
        assert (
            api.put(f"/request-queues/{queue['id']}/requests/{first['id']}", json=handled).status_code == 200
        )
        seen["queue"] = queue["id"]
        seen["locked"] = second["id"]

        run = api.post("/acts/~mover/runs").json()["data"]
        api.post(f"/actor-runs/{run['id']}/log", content=b"2026-12-05T10:00:00.000Z crawled\n")
        api.put(f"/actor-runs/{run['id']}", json={"status": "SUCCEEDED", "exitCode": 0})
        seen["run"] = run["id"]
        seen["unnamed"] = api.post("/key-value-stores").json()["data"]["id"]
    seen["signed"] = run_cli_here("public-url", "crawl", "shot", data_dir=server.data_dir).strip()
    return seen


def _check(node: Server, seen: dict[str, Any]) -> None:
    """The node on the new database serves all of it as the old server did."""
    store = seen["store"]
    with node.client() as api:
        listed = api.get(f"/key-value-stores/{store}/keys").text.replace(node.base_url, seen["base_url"])
        assert json.loads(listed)["data"]["items"] == seen["keys"]  # signed links as before, on the new host
        for key, before in seen["records"].items():
            got = api.get(f"/key-value-stores/{store}/records/{key}", headers={"accept-encoding": "gzip"})
            assert got.status_code == 200, (key, got.text)
            assert got.content == before.content, key
            for header in ("content-type", "content-encoding", "etag"):
                assert got.headers.get(header) == before.headers.get(header), (key, header)
        assert api.get(f"/key-value-stores/{store}/records/gone").status_code == 404
        assert api.get(f"/key-value-stores/{seen['unnamed']}").status_code == 200

        items = api.get(f"/datasets/{seen['dataset']}/items", params={"limit": 5000})
        assert items.json() == ITEMS
        assert api.get(f"/datasets/{seen['dataset']}").json()["data"]["itemCount"] == len(ITEMS)

        queue = api.get(f"/request-queues/{seen['queue']}").json()["data"]
        assert (queue["totalRequestCount"], queue["handledRequestCount"]) == (5, 1)
        # The lock taken before the move still holds: the head offers the three others.
        head = api.post(f"/request-queues/{seen['queue']}/head/lock", params={"lockSecs": 60, "limit": 10})
        offered = [item["uniqueKey"] for item in head.json()["data"]["items"]]
        assert len(offered) == 3
        assert seen["locked"] not in [item["id"] for item in head.json()["data"]["items"]]

        run = api.get(f"/actor-runs/{seen['run']}").json()["data"]
        assert run["status"] == "SUCCEEDED"
        log = api.get(f"/actor-runs/{seen['run']}/log", params={"raw": "1"})
        assert log.content == b"2026-12-05T10:00:00.000Z crawled\n"

        # New stores get new numbers, past the copied ones.
        assert api.post("/key-value-stores", params={"name": "after"}).status_code == 201
        assert api.put("/key-value-stores/~after/records/a", content=b"x").status_code == 201
    # Bob's token, his read share, and a signed link made before the move work as before.
    with node.client(token=seen["bob"]) as bob:
        assert bob.get(f"/key-value-stores/{store}/records/INPUT").status_code == 200
        assert bob.put(f"/key-value-stores/{store}/records/INPUT", content=b"no").status_code == 403
    signed = urlsplit(seen["signed"])
    with node.anonymous() as nobody:
        got = nobody.get(f"{node.base_url}{signed.path}?{signed.query}")
        assert (got.status_code, got.content) == (200, LARGE)
        assert nobody.get(f"{node.base_url}{signed.path}").status_code == 404  # as the platform hides it


def test_an_embedded_satchel_moves_to_postgres_and_s3(backends: Backends, tmp_path: Path) -> None:
    where = backends.locations("postgres+s3")
    s3_env = backends.env("postgres+s3")
    data_dir = tmp_path / "old" / "data"
    server = start_server(data_dir)
    try:
        seen = _fill(server)
        to = ("--to-database", where["database"], "--to-blob-store", where["blob_store"])
        refused = run_cli("transfer", *to, data_dir=data_dir, env=s3_env, ok=False)
        assert "A server runs on this data dir" in refused.stderr
        assert "stop it first" in refused.stderr
    finally:
        stop_server(server)

    done = run_cli("transfer", *to, data_dir=data_dir, env=s3_env, timeout=120)
    assert "(2 users, 7 storages, 5 records, 2,500 dataset items, 5 requests, 1 run)" in done.stdout
    # Only the shot's: the bodies "old" had and "gone" had are no record's any more.
    assert "and 1 large body (614,400 bytes)" in done.stdout, done.stdout
    assert f"SATCHEL_TOKEN from {data_dir / TOKEN_FILE}" in done.stdout
    assert data_dir.joinpath("satchel.db").is_file()  # the source is left as it was
    _same_rows(data_dir / "satchel.db", where["database"])

    admin_token = (data_dir / TOKEN_FILE).read_text().strip()
    node_env = {"SATCHEL_DATABASE": where["database"], "SATCHEL_BLOB_STORE": where["blob_store"], **s3_env}
    node = start_server(tmp_path / "node" / "data", token=admin_token, env=node_env)
    try:
        _check(node, seen)
    finally:
        stop_server(node)

    # Again into the same database: it holds data now, and nothing is written.
    again = run_cli("transfer", *to, data_dir=data_dir, env=s3_env, ok=False)
    assert "already holds data (2 users, 8 stores)" in again.stderr
    assert "Copy into a new, empty database" in again.stderr


def test_on_one_machine_the_bodies_stay_in_the_data_dir(backends: Backends, tmp_path: Path) -> None:
    """To postgres+files on the same data dir: the files are where the node reads them already."""
    database = backends.locations("postgres+files")["database"]
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    try:
        seen = _fill(server)
    finally:
        stop_server(server)
    blobs_before = sorted(p.name for p in (data_dir / "blobs").rglob("*") if p.is_file())

    done = run_cli("transfer", "--to-database", database, data_dir=data_dir)
    assert f"and 1 large body, left where it is, in files under {data_dir.resolve() / 'blobs'}" in done.stdout
    assert f"--data-dir {data_dir}" in done.stdout
    assert sorted(p.name for p in (data_dir / "blobs").rglob("*") if p.is_file()) == blobs_before

    admin_token = (data_dir / TOKEN_FILE).read_text().strip()
    node = start_server(data_dir, token=admin_token, env={"SATCHEL_DATABASE": database})
    try:
        _check(node, seen)
    finally:
        stop_server(node)


@pytest.fixture(scope="module")
def stopped_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data dir of a server that has stopped, for the refusals, which leave it as it is."""
    data_dir = tmp_path_factory.mktemp("stopped") / "data"
    stop_server(start_server(data_dir))
    return data_dir


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--to-database", "mysql://db"), "it is not a PostgreSQL URL"),
        (
            ("--to-database", "postgresql://u:secret@h/db", "--to-blob-store", "gs://b"),
            "it is not an s3:// URL",
        ),
        (
            (
                "--to-database",
                "postgresql://u:secret@h/db",
                "--to-blob-store",
                "s3://b",
                "--to-data-dir",
                "x",
            ),
            "not both",
        ),
        ((), "Missing option '--to-database'"),
        (("--to-database", "postgresql://u:secret@h:5432"), "it names no database"),
        (("--to-database", "postgresql://u:secret@h/db", "--to-data-dir", "{data}/satchel.db"), "is a file"),
        (
            ("--to-database", "postgresql://u:secret@h/db", "--to-blob-store", "s3://a?endpoint=http://h"),
            "bucket",
        ),
    ],
)
def test_what_cannot_be_a_target_is_refused_before_anything_is_read(
    stopped_data_dir: Path, args: tuple[str, ...], said: str
) -> None:
    data_dir = stopped_data_dir
    args = tuple(arg.replace("{data}", str(data_dir)) for arg in args)
    refused = run_cli("transfer", *args, data_dir=data_dir, ok=False)
    assert said in refused.stderr
    assert "secret" not in refused.stderr + refused.stdout


def test_a_folder_without_the_embedded_engine_is_refused(tmp_path: Path) -> None:
    refused = run_cli("transfer", "--to-database", "postgresql://h/db", data_dir=tmp_path / "none", ok=False)
    assert "No data dir at" in refused.stderr
    refused = run_cli(
        "transfer",
        "--to-database",
        "postgresql://h/db",
        data_dir=tmp_path,
        env={"SATCHEL_DATABASE": "postgresql://u:secret@h/other"},
        ok=False,
    )
    assert "must be the embedded engine's" in refused.stderr
    assert "secret" not in refused.stderr


def test_a_copy_that_fails_leaves_the_database_empty_and_no_body_behind(
    backends: Backends, tmp_path: Path
) -> None:
    """A row PostgreSQL refuses (a NUL character in a text, which SQLite keeps) fails the copy after the
    bodies went to the bucket: the database stays empty, the bucket holds nothing, and it says why."""
    where = backends.locations("postgres+s3")
    s3_env = backends.env("postgres+s3")
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    try:
        _fill(server)
    finally:
        stop_server(server)
    with contextlib.closing(sqlite3.connect(data_dir / "satchel.db")) as db, db:
        db.execute("UPDATE runs SET status_message = 'a' || char(0) || 'b'")

    to = ("--to-database", where["database"], "--to-blob-store", where["blob_store"])
    failed = run_cli("transfer", *to, data_dir=data_dir, env=s3_env, ok=False, timeout=120)
    assert "PostgreSQL refused a row of runs" in failed.stderr, failed.stderr
    assert "Nothing was copied: the database is as it was" in failed.stderr
    assert "no large body it had copied is left in the blob store" in failed.stderr
    assert query(where["database"], "SELECT count(*) FROM users")[0][0] == 0
    assert query(where["database"], "SELECT count(*) FROM stores")[0][0] == 0
    assert backends.seaweed.object_names(where["blob_store"]) == []

    # Mended, it copies.
    with contextlib.closing(sqlite3.connect(data_dir / "satchel.db")) as db, db:
        db.execute("UPDATE runs SET status_message = NULL")
    run_cli("transfer", *to, data_dir=data_dir, env=s3_env, timeout=120)
    assert len(backends.seaweed.object_names(where["blob_store"])) == 1


def test_bodies_already_in_the_bucket_stay_there(backends: Backends, tmp_path: Path) -> None:
    """SQLite with bodies in S3, moved to PostgreSQL with the same bucket: the bodies are checked, not copied
    onto themselves, and the node reads them. The pair stays the same: the database takes the mark that
    SQLite shared with the bucket."""
    where = backends.locations("postgres+s3")
    s3_env = backends.env("postgres+s3")
    data_dir = tmp_path / "data"
    server = start_server(data_dir, env={"SATCHEL_BLOB_STORE": where["blob_store"], **s3_env})
    try:
        seen = _fill(server)
    finally:
        stop_server(server)
    objects = backends.seaweed.object_names(where["blob_store"])

    to = ("--to-database", where["database"], "--to-blob-store", where["blob_store"])
    done = run_cli("transfer", *to, "--blob-store", where["blob_store"], data_dir=data_dir, env=s3_env)
    assert f"and 1 large body, left where it is, in {where['blob_store']}" in done.stdout, done.stdout
    assert backends.seaweed.object_names(where["blob_store"]) == objects
    (mark,) = sqlite3.connect(data_dir / "satchel.db").execute("SELECT mark FROM deployment").fetchone()
    assert [row["mark"] for row in query(where["database"], "SELECT mark FROM deployment")] == [mark]
    assert f"satchel/{MARK_NAME}" in objects

    node_env = {"SATCHEL_DATABASE": where["database"], "SATCHEL_BLOB_STORE": where["blob_store"], **s3_env}
    admin_token = (data_dir / TOKEN_FILE).read_text().strip()
    node = start_server(
        tmp_path / "node", token=admin_token, env={**node_env, "SATCHEL_BLOB_GRACE_SECONDS": "1"}
    )
    try:
        _check(node, seen)
        # The bodies "old" and "gone" had, dead in the source, are deleted by the node once their grace is
        # up, as the old server would have: the one left is the shot's (beside the mark).
        assert len(objects) == 3 + 1
        deadline = time.monotonic() + 30
        while len(backends.seaweed.object_names(where["blob_store"])) > 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(backends.seaweed.object_names(where["blob_store"])) == 2
    finally:
        stop_server(node)


def test_bodies_the_target_holds_already_are_never_deleted(backends: Backends, tmp_path: Path) -> None:
    """The source's own bucket under another spelling: its bodies are found there, not written again, and a
    copy that fails then deletes none of them (they are the source's only copies)."""
    where = backends.locations("postgres+s3")
    s3_env = backends.env("postgres+s3")
    data_dir = tmp_path / "data"
    server = start_server(data_dir, env={"SATCHEL_BLOB_STORE": where["blob_store"], **s3_env})
    try:
        _fill(server)
    finally:
        stop_server(server)
    objects = backends.seaweed.object_names(where["blob_store"])
    with contextlib.closing(sqlite3.connect(data_dir / "satchel.db")) as db, db:
        db.execute("UPDATE runs SET status_message = 'a' || char(0) || 'b'")
    alias = where["blob_store"].replace("127.0.0.1", "localhost")
    assert alias != where["blob_store"]

    to = ("--to-database", where["database"], "--to-blob-store", alias)
    env = {"SATCHEL_BLOB_STORE": where["blob_store"], **s3_env}
    failed = run_cli("transfer", *to, data_dir=data_dir, env=env, ok=False, timeout=120)
    assert "Nothing was copied" in failed.stderr
    assert backends.seaweed.object_names(where["blob_store"]) == objects

    # Without --to-blob-store, the bodies stay in the source's bucket (SATCHEL_BLOB_STORE here), and
    # nothing is written into the data dir.
    with contextlib.closing(sqlite3.connect(data_dir / "satchel.db")) as db, db:
        db.execute("UPDATE runs SET status_message = NULL")
    done = run_cli("transfer", "--to-database", where["database"], data_dir=data_dir, env=env, timeout=120)
    assert f"left where it is, in {where['blob_store']}" in done.stdout, done.stdout
    assert not (data_dir / "blobs").exists() or not any((data_dir / "blobs").rglob("*.*"))
    assert backends.seaweed.object_names(where["blob_store"]) == objects
    # The line to start the nodes with, ready to paste: quoted, the user name shown.
    expected = shlex.join(
        ["satchel", "serve", "--database", where["database"], "--blob-store", where["blob_store"]]
    )
    assert f"Next: start the nodes with `{expected}`." in done.stdout


def test_a_copy_interrupted_leaves_the_database_empty_and_no_body_behind(
    backends: Backends, tmp_path: Path
) -> None:
    """Ctrl-C while the bodies are being copied: what was written (a body cut short too) is deleted, the
    database stays empty, and it says so in one line."""
    where = backends.locations("postgres+s3")
    s3_env = backends.env("postgres+s3")
    data_dir = tmp_path / "data"
    _shots(data_dir, count=300)
    process = _transferring(data_dir, where, s3_env)
    try:
        assert process.stderr is not None
        said = process.stderr.readline()
        assert "large bodies: 300 to be copied" in said, said  # said as the copying starts
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1, stderr
    assert "Interrupted. Nothing was copied: the database is as it was" in stderr, stderr
    assert "Traceback" not in stderr
    assert query(where["database"], "SELECT count(*) FROM stores")[0][0] == 0
    assert backends.seaweed.object_names(where["blob_store"]) == []


def test_an_object_store_outage_while_copying_is_said_in_one_line(backends: Backends, tmp_path: Path) -> None:
    """The object store goes away as the bodies are copied: one line says so, and what became of the bodies
    written so far (the store cannot be told to delete them); the database stays empty."""
    where = backends.locations("postgres+s3")
    data_dir = tmp_path / "data"
    _shots(data_dir, count=300)
    process = _transferring(data_dir, where, backends.env("postgres+s3"))
    try:
        assert process.stderr is not None
        said = process.stderr.readline()
        assert "large bodies: 300 to be copied" in said, said
        backends.seaweed.stop()
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        backends.seaweed.start()
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert "ExceptionGroup" not in stderr
    assert "Error: The object store at http://127.0.0.1" in stderr, stderr
    assert "does not answer; try again. Nothing was copied: the database is as it was" in stderr
    assert query(where["database"], "SELECT count(*) FROM stores")[0][0] == 0
    # What it says of the bodies is what the bucket holds once back: none, or some it could not delete.
    left = backends.seaweed.object_names(where["blob_store"])
    if "no large body it had copied is left in the blob store" in stderr:
        assert left == []
    else:
        assert "large bodies it had copied stay in the blob store, named by no record" in stderr


def test_a_record_whose_body_is_missing_is_left_out_and_named(backends: Backends, tmp_path: Path) -> None:
    database = backends.locations("postgres+files")["database"]
    data_dir = tmp_path / "data"
    _shots(data_dir, count=3)
    lost = next(p for p in (data_dir / "blobs").rglob("*") if p.is_file() and p.parent.name != "tmp")
    lost.unlink()
    done = run_cli(
        "transfer", "--to-database", database, "--to-data-dir", str(tmp_path / "new"), data_dir=data_dir
    )
    assert "2 records" in done.stdout, done.stdout
    assert "2 large bodies" in done.stdout
    assert "Left out: 1 record whose body is missing" in done.stderr, done.stderr
    assert "key 's" in done.stderr
    assert "owner is gone" not in done.stdout


def _same_rows(sqlite_file: Path, database: str) -> None:
    """Every column of every row copied holds in PostgreSQL what it held in SQLite (booleans as SQLite
    keeps them, 0 and 1), not only what the API shows of it."""

    async def tables() -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
        conn = await asyncpg.connect(database, timeout=30)
        try:
            found = {}
            for table, _ in transfer.TABLES:
                columns = [
                    row["column_name"]
                    for row in await conn.fetch(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                        " current_schema() AND table_name = $1 ORDER BY ordinal_position",
                        table,
                    )
                ]
                listed = ", ".join(f'"{column}"' for column in columns)
                rows = await conn.fetch(f"SELECT {listed} FROM {table}")
                found[table] = (columns, [tuple(row.values()) for row in rows])
            return found
        finally:
            await conn.close()

    copied = asyncio.run(tables())
    assert sum(len(rows) for _, rows in copied.values()) > 2500
    with contextlib.closing(sqlite3.connect(sqlite_file)) as db:
        for table, (columns, rows) in copied.items():
            listed = ", ".join(f'"{column}"' for column in columns)
            held = db.execute(f"SELECT {listed} FROM {table}").fetchall()
            as_sqlite = [tuple(int(v) if isinstance(v, bool) else v for v in row) for row in rows]
            assert sorted(as_sqlite, key=repr) == sorted(held, key=repr), table


def _shots(data_dir: Path, count: int = 150) -> None:
    """A stopped embedded Satchel whose store holds `count` large bodies (256 KiB each)."""
    server = start_server(data_dir)
    try:
        with server.client() as api:
            store = api.post("/key-value-stores", params={"name": "shots"}).json()["data"]["id"]
            for n in range(count):
                body = os.urandom(256 * 1024)
                assert api.put(f"/key-value-stores/{store}/records/s{n}", content=body).status_code == 201
    finally:
        stop_server(server)


def _transferring(data_dir: Path, where: dict[str, str], env: dict[str, str]) -> subprocess.Popen[str]:
    to = ("--to-database", where["database"], "--to-blob-store", where["blob_store"])
    return subprocess.Popen(
        cli_command("transfer", *to, data_dir=data_dir),
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as at a terminal: a test worker may ignore SIGINT, and its children would inherit that.
        preexec_fn=_interruptible,  # noqa: PLW1509
    )


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_every_table_is_copied_or_left_out_on_purpose(backends: Backends) -> None:
    """A table a later schema step adds is copied, or named here as left out: a transfer that skipped it
    would lose what it holds without a word."""
    database = backends.locations("postgres+files")["database"]

    async def tables() -> set[str]:
        conn = await asyncpg.connect(database, timeout=30)
        try:
            await migrate_connection(conn)
            rows = await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        finally:
            await conn.close()
        return {row["table_name"] for row in rows}

    copied = {table for table, _ in transfer.TABLES + transfer.LEDGER + transfer.PAIRING}
    left_out = {"schema_version"}  # the target's own
    assert asyncio.run(tables()) == copied | left_out
