"""The command line as someone new to it meets it: run from another folder, a command never works on a new,
empty data dir without saying so; `serve` says whether the data dir is new; `share` takes `~NAME` as `export`
does; a changed SATCHEL_TOKEN revokes the admin token it replaces, and says so; `import` names every file
it did not take, with why."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from satchel.service.ids import token_hash
from satchel.storage.blobs.base import MARK_NAME
from tests.conftest import TOKEN, Server, start_server, stop_server
from tests.harness.backends import Backends
from tests.harness.cli import run_cli

OTHER_TOKEN = "apify_api_" + "o" * 36


def satchel_in(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`satchel ARGS` run from `cwd`, with no data dir given unless the arguments or `env` give one."""
    return run_cli(*args, cwd=cwd, env=env, drop=("SATCHEL_",), ok=None)


def server_log(server: Server) -> str:
    """What `satchel serve` printed (start_server keeps it beside the data dir, named for the port)."""
    port = server.base_url.rsplit(":", 1)[1]
    return (server.data_dir.parent / f"server-{port}.log").read_text()


def status_with(server: Server, token: str) -> int:
    return httpx.get(f"{server.api}/users/me", headers={"authorization": f"Bearer {token}"}).status_code


def crawlee_folder(root: Path) -> Path:
    """A Crawlee storage folder with one key-value store of one record."""
    store = root / "storage" / "key_value_stores" / "default"
    store.mkdir(parents=True)
    (store / "INPUT.json").write_text('{"start": "https://example.com"}')
    return root / "storage"


# --- a missing data dir


MANAGEMENT = [
    ("users", "list"),
    ("users", "create", "someone"),
    ("users", "set-access", "someone", "RESTRICTED"),
    ("tokens", "create", "admin"),
    ("tokens", "list", "admin"),
    ("tokens", "revoke", "0123456789ab"),
    ("share", "~mine", "someone", "--read"),
    ("rotate-signing-key", "~mine"),
    ("public-url", "~mine"),
    ("import", "{storage}"),
    ("export", "~mine", "{out}"),
    ("migrate",),
]


@pytest.mark.parametrize("args", MANAGEMENT, ids=" ".join)
def test_a_command_run_elsewhere_refuses_rather_than_make_a_data_dir(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    storage = crawlee_folder(tmp_path)
    filled = [arg.format(storage=storage, out=tmp_path / "out") for arg in args]
    done = satchel_in(elsewhere, *filled)
    assert done.returncode == 1, done.stdout
    looked = elsewhere / "satchel-data"
    assert f"No data dir at {looked}: it holds no satchel.db." in done.stderr
    assert "--data-dir PATH or SATCHEL_DATA_DIR" in done.stderr
    assert list(elsewhere.iterdir()) == []
    assert not (tmp_path / "out").exists()


def test_the_data_dir_named_by_option_or_variable_is_the_one_refused(tmp_path: Path) -> None:
    named = tmp_path / "named"
    done = satchel_in(tmp_path, "users", "list", "--data-dir", str(named))
    assert f"No data dir at {named}: it holds no satchel.db." in done.stderr
    from_env = satchel_in(tmp_path, "users", "list", env={"SATCHEL_DATA_DIR": "relative/data"})
    assert f"No data dir at {tmp_path / 'relative' / 'data'}: it holds no satchel.db." in from_env.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # A folder that exists but holds no Satchel data is refused too, and left as it was.
    named.mkdir()
    again = satchel_in(tmp_path, "users", "create", "someone", "--data-dir", str(named))
    assert again.returncode == 1
    assert f"No data dir at {named}: it holds no satchel.db." in again.stderr
    assert list(named.iterdir()) == []


def test_serve_says_whether_it_made_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data)
    stop_server(first)
    assert f"Created a new data dir at {data}\n" in server_log(first)
    second = start_server(data)
    stop_server(second)
    assert f"Using the data dir at {data}\n" in server_log(second)
    assert "Created" not in server_log(second)
    # A folder of other files is used, and said to be.
    others = tmp_path / "others"
    others.mkdir()
    (others / "notes.txt").write_text("mine")
    third = start_server(others)
    stop_server(third)
    assert f"Created a new data dir at {others} (beside the files already in it)\n" in server_log(third)
    assert (others / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("where", ["file", "under-a-file", "proc"])
def test_serve_says_why_it_cannot_make_the_data_dir(tmp_path: Path, where: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    data_dir, said = {
        "file": (afile, f"The data dir {afile} is a file: name a folder"),
        "under-a-file": (afile / "sub", f"Cannot make the data dir {afile / 'sub'}: Not a directory."),
        "proc": (Path("/proc/satchel-data"), "Cannot make the data dir /proc/satchel-data: No such file"),
    }[where]
    done = satchel_in(tmp_path, "serve", "--port", "0", "--data-dir", str(data_dir))
    assert done.returncode == 1
    assert said in done.stderr
    assert "Traceback" not in done.stderr


def test_commands_on_the_served_data_dir_work(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        done = satchel_in(tmp_path, "users", "create", "someone", "--data-dir", "data")
        assert done.returncode == 0, done.stderr
        token = done.stdout.split("API token: ")[1].strip()
        assert status_with(server, token) == 200
    finally:
        stop_server(server)
    # The embedded engine pairs nothing: its blob folder is always its data dir's, which no setting changes,
    # so its start neither reads nor writes a deployment mark.
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "satchel.db")) as db:
        assert db.execute("SELECT count(*) FROM deployment").fetchone() == (0,)
    assert not (tmp_path / "data" / "blobs" / MARK_NAME).exists()


def test_metadata_commands_on_postgres_need_no_data_dir_but_bodies_do(
    backends: Backends, tmp_path: Path
) -> None:
    """On PostgreSQL with file bodies, users and tokens live in the database: an operator runs those commands
    from anywhere, and nothing is left behind; an import would write bodies into the data dir, so it refuses
    one that is not there."""
    database = backends.locations("postgres+files")["database"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = satchel_in(elsewhere, "users", "create", "operator", "--database", database)
    assert done.returncode == 0, done.stderr
    assert satchel_in(elsewhere, "users", "list", "--database", database).stdout.count("operator ") == 1
    assert list(elsewhere.iterdir()) == []
    storage = crawlee_folder(tmp_path)
    refused = satchel_in(elsewhere, "import", str(storage), "--database", database)
    assert refused.returncode == 1
    assert f"No data dir at {elsewhere / 'satchel-data'}: there is no such folder." in refused.stderr
    # The same settings are those of an environment file that lacks SATCHEL_BLOB_STORE: that way out is named.
    assert (
        "or, if they keep them in a bucket, give the --blob-store (or SATCHEL_BLOB_STORE)" in refused.stderr
    )
    assert list(elsewhere.iterdir()) == []


# --- share ~NAME, and a changed SATCHEL_TOKEN


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("first-run") / "data")
    yield server
    stop_server(server)


def test_share_takes_the_admins_store_by_name_as_export_does(running: Server) -> None:
    created = run_cli("users", "create", "sharer", data_dir=running.data_dir).stdout
    token = created.split("API token: ")[1].strip()
    with running.client() as admin:
        assert admin.put("/key-value-stores/~mine/records/a", content=b"hello").status_code == 404
        admin.post("/key-value-stores", params={"name": "mine"})
        admin.put("/key-value-stores/~mine/records/a", content=b"hello")
    url = f"{running.api}/key-value-stores/admin~mine/records/a"
    sharer = {"authorization": f"Bearer {token}"}
    assert httpx.get(url, headers=sharer).status_code == 404

    done = run_cli("share", "~mine", "sharer", "--read", data_dir=running.data_dir)
    assert "sharer can now read mine" in done.stdout
    assert httpx.get(url, headers=sharer).text == "hello"
    run_cli("share", "mine", "sharer", "--write", data_dir=running.data_dir)  # a bare name: the admin's too
    assert httpx.put(url, headers=sharer, content=b"x").status_code == 201

    missing = run_cli("share", "~nothing-here", "sharer", "--read", data_dir=running.data_dir, ok=False)
    assert "'~nothing-here' was not found" in missing.stderr
    # export reads the same names the same way.
    out = running.data_dir.parent / "exported"
    assert "1 record written" in run_cli("export", "~mine", str(out), data_dir=running.data_dir).stdout
    # Another user's store is read as its owner, and the admin's refusal says how.
    httpx.post(f"{running.api}/key-value-stores", params={"name": "theirs"}, headers=sharer)
    refused = run_cli("export", "sharer~theirs", str(out), data_dir=running.data_dir, ok=False)
    assert "pass --user OWNER" in refused.stderr
    theirs = run_cli("export", "sharer~theirs", str(out), "--user", "sharer", data_dir=running.data_dir)
    assert "0 records written" in theirs.stdout


def test_a_new_satchel_token_revokes_the_one_it_replaces(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data, token=TOKEN)
    extra = run_cli("tokens", "create", "admin", data_dir=data).stdout.strip()
    stop_server(first)
    # The operator's own token is not written into the log (a service manager's journal keeps it).
    said = server_log(first)
    assert f"Admin token: the one SATCHEL_TOKEN gives (also kept in {data / 'admin-token'})" in said
    assert TOKEN not in said

    second = start_server(data, token=OTHER_TOKEN)
    try:
        said = server_log(second)
        assert f"SATCHEL_TOKEN replaces the admin token kept before (id {token_hash(TOKEN)[:12]})" in said
        assert "now revoked" in said
        assert status_with(second, TOKEN) == 401
        assert status_with(second, OTHER_TOKEN) == 200
        assert status_with(second, extra) == 200  # the admin's other tokens are left alone
        assert (data / "admin-token").read_text().strip() == OTHER_TOKEN
    finally:
        stop_server(second)

    # The same SATCHEL_TOKEN again, or none: nothing is replaced, and the kept token stays the admin's. Each
    # start says where the token came from, the same on every start (and node) that SATCHEL_TOKEN gives it.
    for token, line in (
        (OTHER_TOKEN, f"Admin token: the one SATCHEL_TOKEN gives (also kept in {data / 'admin-token'})"),
        ("", f"Admin token: in {data / 'admin-token'}"),
    ):
        again = start_server(data, token=token)
        try:
            assert "replaces" not in server_log(again)
            assert line in server_log(again)
            assert status_with(again, OTHER_TOKEN) == 200
        finally:
            stop_server(again)


# --- import names what it did not take


def test_import_names_every_file_it_did_not_take(running: Server, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    good = storage / "key_value_stores" / "imported"
    good.mkdir(parents=True)
    (good / "INPUT.json").write_text("{}")
    (good / ".hidden").write_text("x")
    (good / "folder").mkdir()
    (good / "orphan.__metadata__.json").write_text('{"key": "orphan", "contentType": "text/plain"}')
    (good / "broken.bin").write_text("b")
    (good / "broken.bin.__metadata__.json").write_text("not json")
    (storage / "key_value_stores" / "loose.txt").write_text("x")
    (storage / "key_value_stores" / "bad_name").mkdir()
    (storage / "key_value_stores" / "bad_name" / "a.txt").write_text("x")
    (storage / "datasets" / "default").mkdir(parents=True)
    (storage / "request_queues" / "default").mkdir(parents=True)
    (storage / "notes.txt").write_text("x")

    done = run_cli("import", str(storage), data_dir=running.data_dir)
    assert "imported: 2 records" in done.stdout  # INPUT.json, and broken.bin under its file name
    skipped = dict(
        line.removeprefix("skipped ").split(": ", 1)
        for line in done.stderr.splitlines()
        if line.startswith("skipped ")
    )
    kvs = storage / "key_value_stores"
    assert set(skipped) == {
        str(p)
        for p in (
            good / ".hidden",
            good / "folder",
            good / "orphan.__metadata__.json",
            good / "broken.bin.__metadata__.json",
            kvs / "loose.txt",
            kvs / "bad_name",
            storage / "datasets",
            storage / "request_queues",
            storage / "notes.txt",
        )
    }
    assert all(reason.strip() for reason in skipped.values())
    assert skipped[str(storage / "datasets")] == "datasets are not imported, only key-value stores"
    assert "Give it another name with --store" in skipped[str(kvs / "bad_name")]
    assert f"{len(skipped)} not imported, each with why, above." in done.stderr


def test_a_storage_folder_without_key_value_stores_makes_no_store(running: Server, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    (storage / "datasets" / "default").mkdir(parents=True)
    (storage / "datasets" / "default" / "000000001.json").write_text("{}")
    done = run_cli("import", str(storage), data_dir=running.data_dir, ok=False)
    assert done.returncode == 1  # it was 0, as for an import done
    assert f"No key-value store was imported from {storage}." in done.stderr
    assert not done.stdout
    assert f"skipped {storage / 'datasets'}: datasets are not imported" in done.stderr
    with running.client() as admin:
        assert admin.get("/key-value-stores/~storage").status_code == 404
