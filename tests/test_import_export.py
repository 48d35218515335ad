"""`satchel import` reads only what is inside the folder it is given; `satchel export` writes only new files.

A folder to import may have been made by someone else: links (to the admin token, to /dev/zero), a metadata
file whose `extension` climbs out of the folder, a FIFO, are skipped and reported, never followed, read or
waited on. An export creates every file itself, through no link, in a folder renamed into place once whole
(a killed export leaves none in the way of the next), and names them so that every key Satchel allows comes
back exactly, with its content type, when the folder is imported again; what Crawlee's own layout can name,
Crawlee reads.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from satchel.service.users import TOKEN_FILE
from tests.conftest import Server, start_server, stop_server
from tests.harness.cli import cli_command, run_cli
from tests.harness.crawlee import read_with_crawlee

KEY_CHARACTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!-_.'()"
MEMORY_CAP = 4 * 1024**3  # address space of an import: a file that never ends must not take the machine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("import-export") / "data")
    yield server
    stop_server(server)


def satchel(server: Server, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    env = {"SATCHEL_MAX_RECORD_BYTES": str(1024 * 1024)}
    return run_cli(*args, data_dir=server.data_dir, env=env, ok=None, timeout=timeout, preexec_fn=cap_memory)


def keys(api: httpx.Client, store: str) -> list[str]:
    return [i["key"] for i in api.get(f"/key-value-stores/~{store}/keys").json()["data"]["items"]]


def store_folder(root: Path, name: str) -> Path:
    folder = root / "storage" / "key_value_stores" / name
    folder.mkdir(parents=True)
    (folder / "ok.txt").write_text("fine")
    return folder


# --- import


def test_import_follows_no_link(server: Server, tmp_path: Path) -> None:
    """A link to the admin-token file must not become a record the importing user can read, nor a linked
    folder bring in what lies outside the folder given."""
    folder = store_folder(tmp_path, "linked-files")
    token_file = server.data_dir / TOKEN_FILE
    (folder / "token.txt").symlink_to(token_file)
    (folder / "token2").symlink_to(token_file)
    (folder / "token2.__metadata__.json").write_text('{"key": "token2", "contentType": "text/plain"}')
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(token_file.read_text())
    (tmp_path / "storage" / "key_value_stores" / "linked-folder").symlink_to(outside)
    done = satchel(server, "import", str(tmp_path / "storage"))
    assert done.returncode == 0, done.stderr
    assert "linked-files: 1 record" in done.stdout
    assert "linked-folder" not in done.stdout
    for name in ("token.txt", "token2", "linked-folder"):
        assert f"{name}: a link; links are not followed" in done.stderr
    with server.client() as api:
        assert keys(api, "linked-files") == ["ok"]
        assert api.get("/key-value-stores/~linked-folder").status_code == 404
    # The storage folder's `key_value_stores` itself a link: nothing is imported through it.
    (tmp_path / "other-storage").mkdir()
    (tmp_path / "other-storage" / "key_value_stores").symlink_to(
        outside.parent / "storage" / "key_value_stores"
    )
    done = satchel(server, "import", str(tmp_path / "other-storage"))
    assert done.returncode == 1, done.stderr  # nothing imported
    assert not done.stdout
    assert "key_value_stores: a link; links are not followed" in done.stderr


def test_import_takes_no_path_from_metadata(server: Server, tmp_path: Path) -> None:
    """`extension` (Crawlee for JavaScript's) names a file in the folder, never a path out of it."""
    folder = store_folder(tmp_path, "climbing")
    (tmp_path / "secret.txt").write_text("outside the folder")
    (folder / "a.").mkdir()  # so that `a./../../../../secret.txt` resolves
    (folder / "a.__metadata__.json").write_text('{"key": "a", "extension": "/../../../../secret.txt"}')
    done = satchel(server, "import", str(folder))
    assert done.returncode == 0, done.stderr
    assert "a.__metadata__.json: the record's file is missing" in done.stderr
    assert "a.: a folder" in done.stderr
    with server.client() as api:
        assert keys(api, "climbing") == ["ok"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_import_waits_on_nothing_and_reads_no_endless_file(server: Server, tmp_path: Path, kind: str) -> None:
    """A FIFO (which blocks whoever opens it) or a link to /dev/zero (which never ends), as a record's file or
    as its metadata, is skipped at once."""
    folder = store_folder(tmp_path, f"special-{kind}")
    for name in ("body.bin", "meta.__metadata__.json"):
        if kind == "fifo":
            os.mkfifo(folder / name)
        else:
            (folder / name).symlink_to("/dev/zero")
    (folder / "meta").write_bytes(b"the metadata names this file")
    done = satchel(server, "import", str(folder), timeout=30)
    assert done.returncode == 0, done.stderr
    reason = "not a regular file" if kind == "fifo" else "a link; links are not followed"
    assert f"body.bin: {reason}" in done.stderr
    assert f"meta.__metadata__.json: {reason}" in done.stderr
    with server.client() as api:
        assert sorted(keys(api, f"special-{kind}")) == ["meta", "ok"]


def test_import_reports_everything_it_skips(server: Server, tmp_path: Path) -> None:
    folder = store_folder(tmp_path, "reported")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.txt").write_text("not directly in the store folder")
    (folder / ".DS_Store").write_bytes(b"junk")
    (folder / "gone.__metadata__.json").write_text('{"key": "gone"}')
    (folder / "bad.__metadata__.json").write_text("{not json")
    (folder / "big.bin").write_bytes(b"x" * (1024 * 1024 + 1))  # past max_record_bytes (1 MiB here)
    (folder / "key_value_stores").write_text("a record called so, in a store folder")
    done = satchel(server, "import", str(folder))
    assert done.returncode == 0, done.stderr
    assert "reported: 2 records" in done.stdout
    for expected in (
        "sub: a folder",
        ".DS_Store: a hidden file",
        "gone.__metadata__.json: the record's file is missing",
        "bad.__metadata__.json: not a record's metadata",
        "big.bin: 1048577 bytes, larger than the limit of 1048576 bytes",
    ):
        assert expected in done.stderr


def test_import_skips_a_file_whose_name_is_not_utf8(server: Server, tmp_path: Path) -> None:
    """Such a name (a byte 0xff) is no key: it ended the whole import in a UnicodeEncodeError; as a key in a
    record's metadata too."""
    folder = store_folder(tmp_path, "not-utf8")
    with open(os.fsencode(folder) + b"/\xff", "wb") as file:
        file.write(b"x")
    (folder / "escaped.bin").write_bytes(b"y")
    (folder / "escaped.bin.__metadata__.json").write_text('{"key": "\\udcff", "contentType": "text/plain"}')
    done = satchel(server, "import", str(folder))
    assert done.returncode == 0, done.stderr
    assert "not-utf8: 2 records" in done.stdout  # ok.txt, and escaped.bin under its file name
    assert f"skipped {folder}/\\udcff: a name that is not UTF-8 text, so no record key" in done.stderr
    assert "__metadata__.json: not a record's metadata (a key that is not UTF-8 text)" in done.stderr
    with server.client() as api:
        assert keys(api, "not-utf8") == ["escaped", "ok"]


def test_import_names_a_store_metadata_file_it_cannot_read(server: Server, tmp_path: Path) -> None:
    """It was passed over without a word. Nothing in it is imported: the store is named for its folder."""
    folder = store_folder(tmp_path, "bad-store-meta")
    (folder / "__metadata__.json").write_text('{"name": "bad-store-meta", ')
    done = satchel(server, "import", str(folder))
    assert done.returncode == 0, done.stderr
    assert "bad-store-meta: 1 record" in done.stdout
    said = "not a store's metadata (not a JSON object); ignored, the store is named for its folder"
    assert f"skipped {folder}/__metadata__.json: {said}\n" in done.stderr
    assert "1 not imported, each with why, above." in done.stderr
    (folder / "__metadata__.json").write_text('{"name": "bad-store-meta"}')
    again = satchel(server, "import", str(folder))
    assert (again.returncode, again.stderr) == (0, "")


# --- export


def test_export_writes_through_no_link(server: Server, tmp_path: Path) -> None:
    with server.client() as api:
        api.post("/key-value-stores", params={"name": "linked-out"})
        assert api.put("/key-value-stores/~linked-out/records/INPUT", json={"a": 1}).status_code == 201
    victim = tmp_path / "victim.txt"
    victim.write_text("must stay")
    # A record's file already there as a link: the store folder holds files, so the export is refused.
    folder = tmp_path / "out" / "key_value_stores" / "linked-out"
    folder.mkdir(parents=True)
    (folder / "INPUT").symlink_to(victim)
    done = satchel(server, "export", "~linked-out", str(tmp_path / "out"))
    assert done.returncode != 0
    assert "already holds files" in done.stderr
    # `key_value_stores` itself a link: not followed.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "key_value_stores").symlink_to(elsewhere)
    done = satchel(server, "export", "~linked-out", str(tmp_path / "out2"))
    assert done.returncode != 0
    assert "follows no link" in done.stderr
    assert victim.read_text() == "must stay"
    assert not list(elsewhere.iterdir())


def test_export_removes_what_it_wrote_when_a_record_cannot_be_read(server: Server, tmp_path: Path) -> None:
    """A record whose body went (replaced past the grace period while the export ran) fails the export, which
    leaves no half-written folder behind."""
    with server.client() as api:
        store_id = api.post("/key-value-stores", params={"name": "vanishing"}).json()["data"]["id"]
        for key in ("a", "b", "c"):
            api.put(f"/key-value-stores/{store_id}/records/{key}", content=key.encode() * 200_000)
    with sqlite3.connect(server.data_dir / "satchel.db") as db:
        (blob,) = db.execute(
            "SELECT r.blob FROM records r JOIN stores s ON s.pk = r.store_pk WHERE s.id = ? AND r.key = 'b'",
            (store_id,),
        ).fetchone()
    (server.data_dir / "blobs" / blob[:2] / blob).unlink()
    done = satchel(server, "export", "~vanishing", str(tmp_path / "out"))
    assert done.returncode != 0
    assert "Record 'b' was replaced or deleted while it was being read" in done.stderr
    assert not list((tmp_path / "out" / "key_value_stores").iterdir())  # nor its partial folder


def test_an_export_killed_partway_leaves_no_store_and_runs_again(server: Server, tmp_path: Path) -> None:
    """SIGKILL (nothing of the export's own runs) while the records are being written: the store's folder is
    not there, only the export's partial folder beside it; run again, the export removes that folder and
    writes the store whole, which imports back. A finished export is not replaced.

    The export runs over the API, where each record is a request of its own, so that it lasts long enough
    (about a second for 500 records here) to be seen writing and stopped there."""
    name, count = "killed-export", 500
    source = tmp_path / "source"
    source.mkdir()
    for i in range(count):
        (source / f"r{i:05d}.txt").write_text(f"record {i}\n" * 20)
    assert satchel(server, "import", str(source), "--store", name).returncode == 0
    out = tmp_path / "out"
    stores = out / "key_value_stores"
    export = ("export", f"~{name}", str(out), "--url", server.base_url, "--token", server.token)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATCHEL_")}  # no --data-dir from here
    with subprocess.Popen(
        cli_command(*export), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as killed:
        partial = stop_once_writing(killed, stores, name)
        assert not (stores / name).exists(), "the export was stopped only once it had ended"
        killed.kill()
        assert killed.wait(timeout=30) == -signal.SIGKILL
    assert [p.name for p in stores.iterdir()] == [partial.name]
    assert any(partial.iterdir())
    # What the kill left is no store to an import.
    done = satchel(server, "import", str(out))
    assert done.returncode == 1, done.stderr  # nothing imported
    assert not done.stdout
    assert f"{partial}: an unfinished export, not a store (export the store again" in done.stderr

    done = run_cli(*export, drop=("SATCHEL_",))
    assert f"{count} records written to {stores / name}" in done.stdout
    assert [p.name for p in stores.iterdir()] == [name]  # the killed export's partial folder is gone
    for i in range(count):
        assert (stores / name / f"r{i:05d}").read_bytes() == (source / f"r{i:05d}.txt").read_bytes()
    done = satchel(server, "import", str(stores / name), "--store", f"{name}-back")
    assert done.returncode == 0, done.stderr
    assert f"{name}-back: {count} records" in done.stdout
    assert not done.stderr
    with server.client() as api:
        for key in ("r00000", f"r{count - 1:05d}"):
            back = api.get(f"/key-value-stores/~{name}-back/records/{key}")
            assert back.content == (source / f"{key}.txt").read_bytes(), (back.status_code, back.text)

    again = run_cli(*export, ok=False, drop=("SATCHEL_",))
    assert again.returncode == 1
    assert f"{stores / name} already holds files; export into a new or empty folder." in again.stderr
    assert [p.name for p in stores.iterdir()] == [name]
    assert len(list((stores / name).iterdir())) == 2 * count + 1  # each record and its metadata; the store's


def stop_once_writing(export: subprocess.Popen[bytes], stores: Path, name: str) -> Path:
    """Stop the export (SIGSTOP) as soon as its partial folder holds a file; that folder."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for folder in stores.glob(f".{name}.partial-*") if stores.is_dir() else []:
            try:
                writing = any(folder.iterdir())
            except FileNotFoundError:  # renamed into place: the export ended
                continue
            if writing:
                export.send_signal(signal.SIGSTOP)
                return folder
        assert export.poll() is None, "the export ended before it was seen writing into a partial folder"
        time.sleep(0.001)
    raise AssertionError("the export wrote nothing in 60 s")


def every_key() -> list[str]:
    """Each allowed character alone and in company, the lengths at the limit, and keys that look like the
    layout's own files."""
    singles = [c for c in KEY_CHARACTERS if c != "."]
    return sorted(
        {
            *singles,
            *(f"k{c}k" for c in KEY_CHARACTERS),
            KEY_CHARACTERS,
            "...",
            ".hidden",
            "a" * 256,
            "(" * 256,
            "a" * 237,  # the longest whose metadata file name fits Crawlee's layout
            "a" * 238,
            "!" * 79,  # encoded three times as long (%21 each): 237 bytes, which fits
            "!" * 80,
            "__metadata__.json",
            "x",
            "x.__metadata__.json",
            "x.__metadata__.json.__metadata__.json",
            "__metadata__",
            "x.__satchel__.json",
            "INPUT",
            "INPUT.json",
            "page.html",
        },
        key=str.encode,
    )


TYPES = [
    "application/json; charset=utf-8",
    "text/plain",
    "Application/JSON; Charset=UTF-8",
    "text/caf\xe9; q=\xff",
    "application/x-none",
    "image/png",
    "application/octet-stream",
    "multipart/mixed; boundary=x",
]


def test_export_then_import_keeps_every_key_its_bytes_and_type(server: Server, tmp_path: Path) -> None:
    written: dict[str, tuple[bytes, str]] = {}
    with server.client() as api:
        api.post("/key-value-stores", params={"name": "every-key"})
        for i, key in enumerate(every_key()):
            body, content_type = json.dumps({"key": key}).encode(), TYPES[i % len(TYPES)]
            headers = {b"content-type": content_type.encode("latin-1")}
            if i % 5 == 0:  # stored compressed: exported as the bytes it stands for
                headers[b"content-encoding"] = b"gzip"
            content = gzip.compress(body) if i % 5 == 0 else body
            put = api.put(f"/key-value-stores/~every-key/records/{key}", content=content, headers=headers)
            assert put.status_code == 201, (key, put.text)
            written[key] = (body, content_type)
    done = satchel(server, "export", "~every-key", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert f"{len(written)} records written" in done.stdout
    # Keys Crawlee's layout cannot name: the store's own file, another record's metadata file, names too long.
    own = {"__metadata__.json", "x.__metadata__.json", "x.__metadata__.json.__metadata__.json"}
    own |= {"a" * 256, "(" * 256, "a" * 238, "!" * 80}
    assert set(done.stderr.splitlines()[1:]) == {f"  {key}" for key in own}
    assert f"{len(own)} of them under Satchel's own names" in done.stderr
    folder = tmp_path / "out" / "key_value_stores" / "every-key"
    done = satchel(server, "import", str(folder), "--store", "every-key-back")
    assert done.returncode == 0, done.stderr
    assert not done.stderr
    with server.client() as api:
        assert keys(api, "every-key-back") == keys(api, "every-key")
        for key, (body, content_type) in written.items():
            got = api.get(f"/key-value-stores/~every-key-back/records/{key}")
            sent_type = dict(got.headers.raw)[b"content-type"].decode("latin-1")
            assert (got.content, sent_type) == (body, content_type), key
    # Crawlee for Python reads every key its layout can name, and is not misled by the others.
    expected = {key: as_crawlee_reads(*value) for key, value in written.items() if key not in own}
    assert read_with_crawlee(tmp_path / "out", "every-key") == expected


def as_crawlee_reads(body: bytes, content_type: str) -> Any:
    """A value as Crawlee for Python's file-system client gives it back, by its content type."""
    if content_type == "application/x-none":
        return None
    if "application/json" in content_type:
        return json.loads(body)
    return body.decode() if content_type.startswith("text/") else body
