"""The management commands against PostgreSQL, each run as an operator would (`python -m satchel ...`), beside
two servers on the same database that must follow every change, as the nodes of a deployment do."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import obstore
import pytest

from satchel.storage.blobs.base import MARK_NAME
from satchel.storage.postgres.migrations import STEPS
from tests.conftest import Server, free_port, start_server, stop_server
from tests.harness.backends import Backends
from tests.harness.cli import cli_command, run_cli

PROPAGATION_SECONDS = 2.0  # how soon a change made by the CLI must reach a running server


def satchel(
    *args: str, data_dir: Path, env: dict[str, str] | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """One `satchel` command in a process of its own; the storage options are in `args`."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return run_cli(*args, data_dir=data_dir, env=env, ok=ok, cwd=data_dir.parent)


def query(dsn: str, sql: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql)
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


def eventually(check: Callable[[], int], expected: int, timeout: float = PROPAGATION_SECONDS) -> None:
    """Poll until `check` gives `expected` (an HTTP status), failing after `timeout` with the last one."""
    deadline = time.monotonic() + timeout
    while (got := check()) != expected:
        assert time.monotonic() < deadline, f"still {got}, not {expected}, after {timeout} s"
        time.sleep(0.02)


def status(server: Server, token: str | None, method: str, path: str, **kwargs: Any) -> int:
    with server.client(token, timeout=30) if token else server.anonymous(timeout=30) as http:
        return http.request(method, path, **kwargs).status_code


def whoami(server: Server, token: str) -> int:
    return status(server, token, "GET", "/users/me")


def created_token(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.split("API token: ")[1].strip()


@dataclass
class Deployment:
    dsn: str
    nodes: list[Server]
    cli_dir: Path  # the data dir the commands are given: an operator's machine, not a node's

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return satchel(*args, "--database", self.dsn, data_dir=self.cli_dir, ok=ok)


@pytest.fixture(scope="module")
def deployment(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Two servers over one fresh PostgreSQL database, on one data dir: its files are their blob store (a
    folder every node mounts), and a node on a blob folder of its own is refused."""
    dsn = backends.locations("postgres+files")["database"]
    root = tmp_path_factory.mktemp("cli-postgres")
    nodes: list[Server] = []
    try:
        for _ in range(2):
            nodes.append(start_server(root / "nodes" / "data", env={"SATCHEL_DATABASE": dsn}))
        yield Deployment(dsn, nodes, root / "operator" / "data")
    finally:
        for node in nodes:
            stop_server(node)


def test_migrate_on_a_fresh_database_and_again(backends: Backends, tmp_path: Path) -> None:
    dsn = backends.locations("postgres+files")["database"]
    first = satchel("migrate", "--database", dsn, data_dir=tmp_path / "data")
    assert "up to date" in first.stdout
    applied = query(dsn, "SELECT version, applied_at FROM schema_version ORDER BY version")
    assert [row["version"] for row in applied] == list(range(1, len(STEPS) + 1))
    tables = {
        row["tablename"] for row in query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {"users", "tokens", "stores", "grants", "records", "dead_blobs", "blob_uploads"} <= tables

    again = satchel("migrate", "--database", dsn, data_dir=tmp_path / "data")
    assert "up to date" in again.stdout
    assert query(dsn, "SELECT version, applied_at FROM schema_version ORDER BY version") == applied


def test_migrations_started_together_apply_once(backends: Backends, tmp_path: Path) -> None:
    dsn = backends.locations("postgres+files")["database"]
    runs = [
        subprocess.Popen(
            cli_command("migrate", "--database", dsn, data_dir=tmp_path / f"data{n}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for run in runs:
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        assert "up to date" in out
    versions = [row["version"] for row in query(dsn, "SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, len(STEPS) + 1))


def test_commands_say_plainly_when_the_database_cannot_be_used(tmp_path: Path) -> None:
    """A database that does not answer is named by the host and port tried, so that a wrong --database can be
    told from a database that is down, never with the URL's password; `serve` says it as the commands do."""
    port = free_port()  # closed again: nothing listens there
    password = "pw-never-shown-5f1c"
    down = f"postgresql://satchel:{password}@127.0.0.1:{port}/nothing"
    for args in (
        ("migrate",),
        ("users", "list"),
        ("tokens", "create", "anyone"),
        ("serve", "--port", str(free_port())),
    ):
        refused = satchel(*args, "--database", down, data_dir=tmp_path / "data", ok=False)
        assert refused.returncode == 1, (args, refused.stderr)
        said = f"Error: The database at 127.0.0.1:{port} does not answer: connection refused.\n"
        assert said in refused.stderr, (args, refused.stderr)
        assert password not in refused.stdout + refused.stderr
    unknown = satchel(
        "users", "list", "--database", "mysql://db/satchel", data_dir=tmp_path / "data", ok=False
    )
    assert "it is not a PostgreSQL URL: leave it empty for SQLite" in unknown.stderr


MALFORMED = {  # a database URL with a password, and what is said of it
    "mysql://satchel:{pw}@127.0.0.1:43343/satchel": "it is not a PostgreSQL URL",
    "postgresql://satchel:{pw}@127.0.0.1:abc/db": "its port is not a number from 1 to 65535",
    "postgresql://satchel:{pw}@127.0.0.1:99999/db": "its port is not a number from 1 to 65535",
    "postgresql://satchel:{pw}@h:5432/db?port=70000": "its port is not a number from 1 to 65535",
    "postgresql://satchel:{pw}@[::1:5432/db": "its host cannot be read",
    "postgresql://satchel:{pw}@[::1]x/db": "a host in [ ] is not an IPv6 address and port",
    "postgresql://satchel:{pw}@127.0.0.1/db?sslmode=bogus": "its sslmode is not one of disable, allow",
    "postgresql://satchel:{pw}@127.0.0.1/db?foo": "its query is not NAME=VALUE parameters",
    "postgresql://satchel:{pw}/x@127.0.0.1/db": "its user or password holds a /, ? or #",
}


@pytest.mark.parametrize("args", [("migrate",), ("users", "list"), ("serve", "--port", "0")], ids=" ".join)
def test_a_malformed_database_url_is_one_line_without_its_password(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Each was a traceback from urllib or asyncpg (or, for a scheme Satchel does not know, an error that
    quoted the whole URL, password and all); the URL is checked where the settings are read."""
    password = "pw-never-shown-7d2a"
    for template, said in MALFORMED.items():
        url = template.format(pw=password)
        done = satchel(*args, "--database", url, data_dir=tmp_path / "data", ok=False)
        assert done.returncode == 1, (url, done.stderr)
        assert done.stderr.startswith(f"Error: Setting database (--database): {said}"), (url, done.stderr)
        assert "(got 'postgresql://***@" in done.stderr or "(got 'mysql://***@" in done.stderr
        assert password not in done.stdout + done.stderr
    variable = satchel(
        *args, data_dir=tmp_path / "data", env={"SATCHEL_DATABASE": f"mysql://u:{password}@h/db"}, ok=False
    )
    assert "Error: Setting database (SATCHEL_DATABASE): it is not a PostgreSQL URL" in variable.stderr
    assert password not in variable.stdout + variable.stderr
    blobs = satchel(
        *args, "--blob-store", f"s3://key:{password}@bucket", data_dir=tmp_path / "data", ok=False
    )
    assert "Setting blob_store (--blob-store): it carries a user or password" in blobs.stderr
    assert "(got 's3://***@bucket')" in blobs.stderr
    assert password not in blobs.stdout + blobs.stderr


def test_what_asyncpg_refuses_in_a_database_url_is_one_line(backends: Backends, tmp_path: Path) -> None:
    """A parameter asyncpg reads for itself with a value it refuses, and one it passes to PostgreSQL as a
    setting that PostgreSQL does not know: each was asyncpg's traceback, from `migrate`, the commands and
    `serve`."""
    dsn = backends.locations("postgres+files")["database"]
    cases = {
        f"{dsn}?target_session_attrs=bogus": "Error: The database URL cannot be used: target_session_attrs",
        f"{dsn}?foo=bar": "Error: PostgreSQL refuses a parameter of the database URL: unrecognized"
        ' configuration parameter "foo".',
    }
    for url, said in cases.items():
        for args in (("migrate",), ("users", "list"), ("serve", "--port", "0")):
            done = satchel(*args, "--database", url, data_dir=tmp_path / "data", ok=False)
            assert done.returncode == 1, (args, url, done.stderr)
            assert said in done.stderr, (args, url, done.stderr)
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_commands_say_plainly_when_postgres_refuses(backends: Backends, tmp_path: Path) -> None:
    """A role or a database that is not there, a user that may not create tables, a schema newer than this
    Satchel: one line saying which, where each printed asyncpg's traceback (`serve` too, whose start is
    the same)."""
    pg = backends.postgres
    owned_by_postgres = backends.locations("postgres+files")["database"]
    name = owned_by_postgres.rsplit("/", 1)[1]
    role = "r" + name
    query(pg.dsn(), f'CREATE ROLE "{role}" LOGIN')  # may connect, but not create tables in the public schema
    cases = {
        f"postgresql://nobody@127.0.0.1:{pg.port}/{name}": 'role "nobody" does not exist',
        pg.dsn("no_such_database"): 'database "no_such_database" does not exist',
        f"postgresql://{role}@127.0.0.1:{pg.port}/{name}": "Satchel's user must own its database",
    }
    for dsn, said in cases.items():
        for args in (("migrate",), ("users", "list")):
            refused = satchel(*args, "--database", dsn, data_dir=tmp_path / "data", ok=False)
            assert said in refused.stderr, (args, dsn, refused.stderr)
    serve = satchel(
        "serve", "--database", pg.dsn("no_such_database"), "--port", str(free_port()),
        data_dir=tmp_path / "node" / "data", ok=False,
    )  # fmt: skip
    assert 'database "no_such_database" does not exist' in serve.stderr

    satchel("migrate", "--database", owned_by_postgres, data_dir=tmp_path / "data")
    query(owned_by_postgres, f"INSERT INTO schema_version VALUES ({len(STEPS) + 1}, 0)")
    newer = satchel("migrate", "--database", owned_by_postgres, data_dir=tmp_path / "data", ok=False)
    assert "newer than this Satchel knows" in newer.stderr


def test_users_and_tokens(deployment: Deployment) -> None:
    one, two = deployment.nodes
    token = created_token(deployment.cli("users", "create", "carol"))
    assert token.startswith("apify_api_")
    # A new user's token works on every server at once: unknown tokens are never cached.
    assert whoami(one, token) == 200
    assert whoami(two, token) == 200
    assert "already exists" in deployment.cli("users", "create", "carol", ok=False).stderr

    listing = deployment.cli("users", "list").stdout.splitlines()
    assert listing[0].split()[:2] == ["USERNAME", "ID"]
    carol = next(line.split() for line in listing if line.startswith("carol "))
    assert carol[2:4] == ["RESTRICTED", "1"]
    assert any(line.startswith("admin ") for line in listing)  # the servers' admin, in the same database

    second = deployment.cli("tokens", "create", "carol").stdout.strip()
    assert second.startswith("apify_api_")
    assert second != token
    assert whoami(two, second) == 200
    ids = [line.split()[0] for line in deployment.cli("tokens", "list", "carol").stdout.splitlines()[1:]]
    assert len(ids) == 2
    # Only digests are kept; the listing's ids are their starts.
    digests = [row["hash"] for row in query(deployment.dsn, "SELECT hash FROM tokens")]
    assert hashlib.sha256(token.encode()).hexdigest() in digests
    assert not [d for d in digests if token in d or second in d]
    assert all(any(d.startswith(i) for d in digests) for i in ids)

    # Both servers have the first token cached now; a revocation by the CLI reaches them through the feed.
    for node in (one, two):
        assert whoami(node, token) == 200
    assert "Revoked token" in deployment.cli("tokens", "revoke", token).stdout
    for node in (one, two):
        eventually(lambda node=node: whoami(node, token), 401)  # type: ignore[misc]
        assert whoami(node, second) == 200

    (remaining,) = deployment.cli("tokens", "list", "carol").stdout.splitlines()[1:]
    deployment.cli("tokens", "revoke", remaining.split()[0])  # by its id this time
    for node in (one, two):
        eventually(lambda node=node: whoami(node, second), 401)  # type: ignore[misc]
    assert "No such token" in deployment.cli("tokens", "revoke", "apify_api_nosuchtoken", ok=False).stderr


def test_share_and_access(deployment: Deployment) -> None:
    one, two = deployment.nodes
    dave = created_token(deployment.cli("users", "create", "dave"))
    with one.client() as admin:
        store = admin.post("/key-value-stores", params={"name": "cli-shared"}).json()["data"]
        assert admin.put(f"/key-value-stores/{store['id']}/records/a", content=b"hello").status_code == 201
    record = f"/key-value-stores/{store['id']}/records/a"
    for node in (one, two):  # and each server now remembers that dave has no grant
        assert status(node, dave, "GET", record) == 404

    assert "dave can now read" in deployment.cli("share", "admin~cli-shared", "dave", "--read").stdout
    for node in (one, two):
        eventually(lambda node=node: status(node, dave, "GET", record), 200)  # type: ignore[misc]
        assert status(node, dave, "PUT", record, content=b"x") == 403

    deployment.cli("share", store["id"], "dave", "--write")
    for node in (one, two):
        eventually(lambda node=node: status(node, dave, "PUT", record, content=b"dave"), 201)  # type: ignore[misc]

    assert "no longer has access" in deployment.cli("share", "admin~cli-shared", "dave", "--revoke").stdout
    for node in (one, two):
        eventually(lambda node=node: status(node, dave, "GET", record), 404)  # type: ignore[misc]

    assert "not found" in deployment.cli("share", "admin~nope", "dave", "--read", ok=False).stderr
    assert "not found" in deployment.cli("share", store["id"], "nobody", "--read", ok=False).stderr

    # The owner's default access, set by the CLI, opens the store (it follows it) to anyone on every server.
    deployment.cli("users", "set-access", "admin", "ANYONE_WITH_ID_CAN_READ")
    try:
        for node in (one, two):
            eventually(lambda node=node: status(node, None, "GET", record), 200)  # type: ignore[misc]
    finally:
        deployment.cli("users", "set-access", "admin", "RESTRICTED")
    for node in (one, two):
        eventually(lambda node=node: status(node, None, "GET", record), 404)  # type: ignore[misc]


def test_import_and_export_through_the_object_store(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """postgres+s3: bodies the CLI imports land in the bucket the server reads, and back out again."""
    where = backends.locations("postgres+s3")
    s3_env = backends.env("postgres+s3")
    root = tmp_path_factory.mktemp("cli-s3")
    node = start_server(
        root / "node" / "data",
        env={"SATCHEL_DATABASE": where["database"], "SATCHEL_BLOB_STORE": where["blob_store"], **s3_env},
    )
    try:
        large = os.urandom(600 * 1024)  # past inline_max_bytes: an object in the bucket
        folder = root / "storage" / "key_value_stores" / "crawl"
        folder.mkdir(parents=True)
        (folder / "INPUT.json").write_text(json.dumps({"start": "https://example.com"}))
        (folder / "page.bin").write_bytes(large)
        options = ("--database", where["database"], "--blob-store", where["blob_store"])
        operator = root / "operator" / "data"
        done = satchel("import", str(root / "storage"), *options, data_dir=operator, env=s3_env)
        assert "crawl: 2 records" in done.stdout
        with node.client() as api:
            got = api.get("/key-value-stores/~crawl/records/page")
            assert (got.status_code, got.content) == (200, large)
            assert api.get("/key-value-stores/~crawl/records/INPUT").json() == {
                "start": "https://example.com"
            }
            assert api.put("/key-value-stores/~crawl/records/late", content=large[::-1]).status_code == 201

        done = satchel("export", "~crawl", str(root / "out"), *options, data_dir=operator, env=s3_env)
        assert "3 records written" in done.stdout
        exported = root / "out" / "key_value_stores" / "crawl"
        assert (exported / "page").read_bytes() == large
        assert (exported / "late").read_bytes() == large[::-1]
        # Nothing of it stayed on the operator's machine: the bodies went to the bucket.
        assert not [p for p in operator.rglob("*") if p.is_file()]

        # Without the servers' bucket (files on this machine, or another bucket), bodies would go where no
        # server reads them, and come back as missing: refused, before anything is written.
        other = where["blob_store"].replace("s3://", "s3://other-", 1)
        operator.mkdir(parents=True, exist_ok=True)  # with bodies in files, a data dir to hold them
        for blob_store in ((), ("--blob-store", other)):
            wrong = ("--database", where["database"], *blob_store)
            refused = satchel(
                "import", str(root / "storage"), *wrong, data_dir=operator, env=s3_env, ok=False
            )
            assert "None of the 2 large record bodies checked is in" in refused.stderr
            assert "Give the --blob-store (or SATCHEL_BLOB_STORE) the servers use." in refused.stderr
            refused = satchel(
                "export", "~crawl", str(root / "out2"), *wrong, data_dir=operator, env=s3_env, ok=False
            )
            assert "None of the 2 large record bodies checked is in" in refused.stderr
            # Nor does a node start on them: it would answer 404 for every large body.
            port = str(free_port())
            refused = satchel("serve", "--port", port, *wrong, data_dir=operator, env=s3_env, ok=False)
            assert "None of the 2 large record bodies checked is in" in refused.stderr
        assert not (root / "out2").exists()
        assert not [p for p in operator.rglob("*") if p.is_file()]
    finally:
        stop_server(node)


def test_a_fresh_database_refuses_a_node_on_another_blob_store(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """postgres+s3 before any large body exists, where the bodies give nothing to look for: the nodes that
    start together on the new database pair it with their bucket by one mark, and a node (or an import) given
    no blob store, another bucket or another prefix is refused; the bucket's own nodes start."""
    where = backends.locations("postgres+s3")
    dsn, bucket = where["database"], where["blob_store"]
    s3_env = backends.env("postgres+s3")
    root = tmp_path_factory.mktemp("cli-mark")
    node_env = {"SATCHEL_DATABASE": dsn, "SATCHEL_BLOB_STORE": bucket, **s3_env}
    with ThreadPoolExecutor(2) as pool:
        nodes = list(pool.map(lambda n: start_server(root / f"node{n}" / "data", env=node_env), range(2)))
    try:
        (row,) = query(dsn, "SELECT mark FROM deployment")
        mark = row["mark"]
        assert bucket_mark(backends, bucket) == mark
        assert query(dsn, "SELECT count(*) AS n FROM records")[0]["n"] == 0

        elsewhere = root / "elsewhere" / "data"
        elsewhere.mkdir(parents=True)
        storage = root / "storage" / "key_value_stores" / "crawl"
        storage.mkdir(parents=True)
        (storage / "page.bin").write_bytes(os.urandom(600 * 1024))
        other = bucket.replace("s3://", "s3://other-", 1)
        for options, env in (
            ((), {}),  # files in this data dir
            (("--blob-store", other), {}),
            (("--blob-store", bucket), {"SATCHEL_S3__PREFIX": "other/"}),
        ):
            wrong = ("--database", dsn, *options)
            for command in (("serve", "--port", str(free_port())), ("import", str(storage.parent.parent))):
                refused = satchel(*command, *wrong, data_dir=elsewhere, env={**s3_env, **env}, ok=False)
                assert refused.returncode == 1
                assert f"lacks this database's deployment mark {mark}" in refused.stderr, refused.stderr
                assert "Give the --blob-store (or SATCHEL_BLOB_STORE) the servers use." in refused.stderr
        assert bucket_mark(backends, other) is None  # nothing was paired or imported there
        # The bucket a refused node or import made (a misspelt name, say) is not left behind, empty.
        assert asyncio.run(backends.seaweed.blobs(other)._bucket_request("HEAD")) == 404
        assert not [p for p in elsewhere.rglob("*") if p.is_file()]
        assert query(dsn, "SELECT count(*) AS n FROM records")[0]["n"] == 0

        # Another deployment's bucket: its mark is not this database's.
        foreign = bucket.replace("s3://", "s3://foreign-", 1)
        asyncio.run(write_bucket_mark(backends, foreign, "f" * 32))
        refused = satchel(
            "serve", "--port", str(free_port()), "--database", dsn, "--blob-store", foreign,
            data_dir=elsewhere, env=s3_env, ok=False,
        )  # fmt: skip
        assert (
            f"The blob store {foreign} under the prefix satchel/ belongs to another deployment: its mark "
            f"(the object satchel/satchel-deployment) is {'f' * 32}, and this database's is {mark}."
        ) in refused.stderr
        assert bucket_mark(backends, foreign) == "f" * 32

        nodes.append(start_server(root / "node2" / "data", env=node_env))  # the right one starts
        assert [row["mark"] for row in query(dsn, "SELECT mark FROM deployment")] == [mark]
    finally:
        for node in nodes:
            stop_server(node)


def test_migrate_given_the_blob_store_pairs_before_any_node_starts(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """deploy.md runs `satchel migrate` with the nodes' environment file before the nodes start. Given the
    blob store, it pairs a new database with it, so a node with the wrong one is refused whichever starts
    first: without it, a node whose environment file lacked SATCHEL_BLOB_STORE, started with the others on
    a new database, won the pairing in 2 of 3 tries (it needs no round trip to S3), and the right nodes
    were refused. A migrate given another bucket is refused, and a database that holds another's mark is
    told not to take it over unless that deployment is gone."""
    where = backends.locations("postgres+s3")
    dsn, bucket = where["database"], where["blob_store"]
    s3_env = backends.env("postgres+s3")
    root = tmp_path_factory.mktemp("cli-migrate-pairs")
    operator = root / "operator" / "data"  # not made: migrate needs no data dir
    done = satchel("migrate", "--database", dsn, "--blob-store", bucket, data_dir=operator, env=s3_env)
    assert "The database's schema is up to date" in done.stdout
    assert f"The database is paired with the blob store {bucket} under the prefix satchel/" in done.stdout
    (row,) = query(dsn, "SELECT mark, paired_at FROM deployment")
    assert row["paired_at"] is not None
    assert bucket_mark(backends, bucket) == row["mark"]
    assert not operator.exists()

    # The node with no blob store starts first, alone: it is refused, and leaves no mark in its data dir.
    wrong = root / "wrong" / "data"
    refused = satchel("serve", "--port", str(free_port()), "--database", dsn, data_dir=wrong, ok=False)
    assert refused.returncode == 1
    assert f"lacks this database's deployment mark {row['mark']}" in refused.stderr, refused.stderr
    assert not (wrong / "blobs" / MARK_NAME).exists()

    other = bucket.replace("s3://", "s3://other-", 1)
    refused = satchel(
        "migrate", "--database", dsn, "--blob-store", other, data_dir=operator, env=s3_env, ok=False
    )
    assert refused.returncode == 1
    assert f"lacks this database's deployment mark {row['mark']}" in refused.stderr, refused.stderr
    assert bucket_mark(backends, other) is None
    again = satchel("migrate", "--database", dsn, "--blob-store", bucket, data_dir=operator, env=s3_env)
    assert "is paired with" in again.stdout
    assert [dict(r) for r in query(dsn, "SELECT mark, paired_at FROM deployment")] == [dict(row)]

    # A second, new database given this bucket: refused, and not told to take the mark over lightly.
    second = backends.locations("postgres+s3")["database"]
    refused = satchel(
        "migrate", "--database", second, "--blob-store", bucket, data_dir=operator, env=s3_env, ok=False
    )
    assert f"holds the deployment mark {row['mark']} of another database" in refused.stderr, refused.stderr
    assert (
        "Only if that database is gone for good, delete the object satchel/satchel-deployment"
        in refused.stderr
    )
    assert query(second, "SELECT mark FROM deployment") == []
    assert bucket_mark(backends, bucket) == row["mark"]

    node = start_server(
        root / "node" / "data", env={"SATCHEL_DATABASE": dsn, "SATCHEL_BLOB_STORE": bucket, **s3_env}
    )
    stop_server(node)


def test_a_bucket_copied_with_the_bodies_but_not_the_mark_takes_it(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A bucket restored, or moved to a new name, by a copy that holds the bodies the database names but not
    its mark (taken before marks were kept, say) is the same blob store: the bodies prove it, and it takes
    the mark. A database restored from before marks takes its bucket's; where neither holds one (a
    deployment from before marks), both get a new one."""
    where = backends.locations("postgres+s3")
    dsn, bucket = where["database"], where["blob_store"]
    s3_env = backends.env("postgres+s3")
    data_dir = tmp_path_factory.mktemp("cli-mark-copy") / "node" / "data"
    large = os.urandom(600 * 1024)  # past inline_max_bytes: an object in the bucket

    def served(blob_store: str) -> bytes:
        env = {"SATCHEL_DATABASE": dsn, "SATCHEL_BLOB_STORE": blob_store, **s3_env}
        node = start_server(data_dir, env=env)
        try:
            with node.client() as api:
                if blob_store == bucket:
                    assert api.post("/key-value-stores", params={"name": "kept"}).status_code == 201
                    assert api.put("/key-value-stores/~kept/records/page", content=large).status_code == 201
                return api.get("/key-value-stores/~kept/records/page").content
        finally:
            stop_server(node)

    def database_mark() -> str | None:
        rows = query(dsn, "SELECT mark FROM deployment")
        return rows[0]["mark"] if rows else None

    served(bucket)
    mark = database_mark()
    assert mark is not None

    moved = bucket.replace("s3://", "s3://moved-", 1)
    backends.seaweed.copy_bucket(bucket, moved)
    asyncio.run(delete_bucket_mark(backends, moved))
    assert served(moved) == large
    assert bucket_mark(backends, moved) == mark

    query(dsn, "DELETE FROM deployment")  # as a dump taken before marks restores the database
    assert served(moved) == large
    assert database_mark() == mark

    query(dsn, "DELETE FROM deployment")
    asyncio.run(delete_bucket_mark(backends, moved))
    assert served(moved) == large
    renewed = database_mark()
    assert renewed not in (None, mark)
    assert bucket_mark(backends, moved) == renewed


def bucket_mark(backends: Backends, url: str) -> str | None:
    """The deployment mark in the bucket of the blob store URL `url` (None: none, or no such bucket)."""
    if not backends.seaweed.object_names(url):
        return None
    return asyncio.run(backends.seaweed.blobs(url).mark())


async def write_bucket_mark(backends: Backends, url: str, mark: str) -> None:
    blobs = backends.seaweed.blobs(url)
    await blobs.open()  # makes the bucket
    await blobs.write_mark(mark)


async def delete_bucket_mark(backends: Backends, url: str) -> None:
    await obstore.delete_async(backends.seaweed.blobs(url)._store, f"satchel/{MARK_NAME}")
