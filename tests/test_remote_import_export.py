"""`satchel import` and `satchel export` on a running server over its API (--url, or SATCHEL_URL with no
--data-dir, --database or --blob-store): the same folders as on the data here, byte for byte, read with the
same care (no link followed, no FIFO waited on), and the same exit codes as `satchel kv` when the server
refuses."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from satchel.service.users import TOKEN_FILE
from tests.conftest import Server
from tests.harness.cli import run_cli
from tests.harness.crawlee import read_with_crawlee

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
BIG_JSON = {"text": "x" * 50_000}
OWN_NAMED = ["__metadata__.json", "other.__metadata__.json"]  # keys Crawlee's layout cannot name


def satchel(*args: str, url: str | None = None, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """`satchel ARGS` with only the SATCHEL_URL and SATCHEL_TOKEN given here in its environment."""
    env = {"SATCHEL_URL": url} if url is not None else {}
    if token is not None:
        env["SATCHEL_TOKEN"] = token
    return run_cli(*args, env=env, drop=("SATCHEL_", "APIFY_"), ok=None, timeout=120)


def filled_store(http: httpx.Client) -> str:
    """A named store: JSON, text, binary, a compressed record, and keys that need Satchel's own names."""
    name = f"rx-{uuid.uuid4().hex[:10]}"
    assert http.post("/key-value-stores", params={"name": name}).status_code == 201
    records = f"/key-value-stores/~{name}/records"
    http.put(f"{records}/INPUT", json={"a": [1, 2]})
    http.put(f"{records}/note", content="plain", headers={"content-type": "text/plain; charset=utf-8"})
    http.put(f"{records}/blob", content=PNG, headers={"content-type": "application/octet-stream"})
    gzipped = gzip.compress(json.dumps(BIG_JSON).encode())
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    assert http.put(f"{records}/gz", content=gzipped, headers=headers).status_code == 201
    for key in OWN_NAMED:
        assert http.put(
            f"{records}/{key}", content=b"{}", headers={"content-type": "application/json"}
        ).is_success
    return name


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_remote_export_writes_what_a_local_one_does(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    name = filled_store(http)
    remote = satchel(
        "export", name, str(tmp_path / "remote"), "--url", server.base_url, "--token", server.token
    )
    assert remote.returncode == 0, remote.stderr
    assert "6 records written" in remote.stdout
    assert all(f"  {key}" in remote.stderr for key in OWN_NAMED)  # told they are under Satchel's own names
    local = satchel("export", name, str(tmp_path / "local"), "--data-dir", str(server.data_dir))
    assert local.returncode == 0, local.stderr

    remote_files = files(tmp_path / "remote" / "key_value_stores" / name)
    local_files = files(tmp_path / "local" / "key_value_stores" / name)
    assert sorted(remote_files) == sorted(local_files)
    for file_name, body in remote_files.items():
        if file_name == "__metadata__.json":  # the store's own: its accessedAt moves with each read
            remote_meta, local_meta = json.loads(body), json.loads(local_files[file_name])
            assert {**remote_meta, "accessedAt": None} == {**local_meta, "accessedAt": None}
        else:
            assert body == local_files[file_name], file_name
    assert read_with_crawlee(tmp_path / "remote", name) == {
        "INPUT": {"a": [1, 2]},
        "blob": PNG,
        "gz": BIG_JSON,
        "note": "plain",
    }


def test_a_remote_import_brings_back_keys_bytes_and_types(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    name = filled_store(http)
    out = tmp_path / "out"
    assert satchel("export", name, str(out), url=server.base_url, token=server.token).returncode == 0
    back = f"{name}-back"
    # SATCHEL_URL set and no --data-dir: the server, over its API.
    done = satchel(
        "import",
        str(out / "key_value_stores" / name),
        "--store",
        back,
        url=server.base_url,
        token=server.token,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{back}: 6 records"
    for key in ("INPUT", "note", "blob", "gz", *OWN_NAMED):
        first = http.get(f"/key-value-stores/~{name}/records/{key}")
        again = http.get(f"/key-value-stores/~{back}/records/{key}")
        assert (again.content, again.headers["content-type"]) == (
            first.content,
            first.headers["content-type"],
        )


def test_a_remote_import_follows_no_link_and_waits_on_nothing(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    name = f"careful-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "storage" / "key_value_stores" / name
    folder.mkdir(parents=True)
    (folder / "ok.txt").write_text("fine")
    (folder / "token.txt").symlink_to(server.data_dir / TOKEN_FILE)
    os.mkfifo(folder / "pipe")
    with open(os.fsencode(folder) + b"/\xff", "wb") as file:  # no UTF-8: it ended the import
        file.write(b"x")
    done = satchel("import", str(tmp_path / "storage"), "--url", server.base_url, "--token", server.token)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{name}: 1 record"
    assert "token.txt: a link; links are not followed" in done.stderr
    assert "pipe: not a regular file" in done.stderr
    assert "\\udcff: a name that is not UTF-8 text, so no record key" in done.stderr
    keys = http.get(f"/key-value-stores/~{name}/keys").json()["data"]["items"]
    assert [item["key"] for item in keys] == ["ok"]


def test_which_data_is_meant(server: Server, http: httpx.Client, tmp_path: Path) -> None:
    name = filled_store(http)
    nowhere = "http://127.0.0.1:9"
    # SATCHEL_URL set, but --data-dir given: the data here.
    here = satchel("export", name, str(tmp_path / "here"), "--data-dir", str(server.data_dir), url=nowhere)
    assert here.returncode == 0, here.stderr
    # SATCHEL_URL set and nothing else: the server it names.
    there = satchel("export", name, str(tmp_path / "there"), url=nowhere, token=server.token)
    assert there.returncode == 1
    assert "Nothing answers at http://127.0.0.1:9" in there.stderr
    both = satchel(
        "export", name, str(tmp_path / "both"), "--url", server.base_url, "--data-dir", str(server.data_dir)
    )
    assert both.returncode == 2
    assert "give one or the other" in both.stderr
    user = satchel(
        "import", str(tmp_path / "here"), "--user", "admin", url=server.base_url, token=server.token
    )
    assert user.returncode == 2
    assert "--user is for the data here" in user.stderr


@pytest.mark.parametrize(
    ("store", "token", "code"), [("no-such-store", None, 3), (None, "apify_api_" + "x" * 36, 4)]
)
def test_a_refused_remote_export_exits_as_kv_does(
    server: Server, http: httpx.Client, tmp_path: Path, store: str | None, token: str | None, code: int
) -> None:
    ref = store or filled_store(http)
    done = satchel("export", ref, str(tmp_path / "out"), url=server.base_url, token=token or server.token)
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "key_value_stores" / ref).exists()
