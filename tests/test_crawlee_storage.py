"""`satchel import` and `satchel export` against folders that Crawlee itself writes and reads.

The Python folders are made and read back by Crawlee for Python's own file-system storage client; the
JavaScript layout is written by hand as Crawlee for JavaScript leaves it. The server runs meanwhile, and what
the commands did is checked through its API.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.harness.cli import run_cli
from tests.harness.crawlee import read_with_crawlee, write_with_crawlee

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
VALUES: dict[str, Any] = {
    "INPUT": {"startUrls": ["https://example.com"], "maxPages": 10},
    "page-1.html": "<html><body>hi</body></html>",
    "shot.png": PNG,
    "odd!key(1)": "keys with characters Crawlee percent-encodes",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("crawlee") / "data")
    yield server
    stop_server(server)


def satchel(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, data_dir=server.data_dir, ok=None, timeout=120)


def test_a_crawlee_python_folder_comes_in_whole(server: Server, tmp_path: Path) -> None:
    write_with_crawlee(tmp_path / "storage", "crawled", VALUES)
    done = satchel(server, "import", str(tmp_path / "storage"))
    assert done.returncode == 0, done.stderr
    assert "crawled: 4 records" in done.stdout
    with server.client() as api:
        records = "/key-value-stores/~crawled/records"
        assert api.get(f"{records}/INPUT").json() == VALUES["INPUT"]
        assert api.get(f"{records}/INPUT").headers["content-type"].startswith("application/json")
        html = api.get(f"{records}/page-1.html")
        assert (html.text, html.headers["content-type"].split(";")[0]) == (
            VALUES["page-1.html"],
            "text/plain",
        )
        shot = api.get(f"{records}/shot.png")
        assert (shot.content, shot.headers["content-type"]) == (PNG, "image/png")
        assert api.get(f"{records}/odd!key(1)").text == VALUES["odd!key(1)"]
        keys = [i["key"] for i in api.get("/key-value-stores/~crawled/keys").json()["data"]["items"]]
        assert keys == sorted(VALUES, key=str.encode)


def test_a_crawlee_javascript_folder_comes_in_with_types_from_extensions(
    server: Server, tmp_path: Path
) -> None:
    folder = tmp_path / "storage" / "key_value_stores" / "default"
    folder.mkdir(parents=True)
    (folder / "INPUT.json").write_text(json.dumps({"js": True}))
    (folder / "page.html").write_text("<p>js</p>")
    (folder / "SCREENSHOT.png").write_bytes(PNG)
    (folder / "with-metadata.bin").write_bytes(b"\x00\x01")
    (folder / "with-metadata.__metadata__.json").write_text(
        json.dumps({"key": "with-metadata", "contentType": "application/x-custom", "extension": "bin"})
    )
    (folder / ".DS_Store").write_bytes(b"junk")
    (folder / "__metadata__.json").write_text(json.dumps({"name": "default"}))
    (folder / "bad key.txt").write_text("a space is not allowed in a key")
    done = satchel(server, "import", str(folder), "--store", "from-js")
    assert done.returncode == 0, done.stderr
    assert "from-js: 4 records" in done.stdout
    assert "bad key.txt" in done.stderr
    with server.client() as api:
        records = "/key-value-stores/~from-js/records"
        keys = [i["key"] for i in api.get("/key-value-stores/~from-js/keys").json()["data"]["items"]]
        assert keys == ["INPUT", "SCREENSHOT", "page", "with-metadata"]
        assert api.get(f"{records}/INPUT").json() == {"js": True}
        assert api.get(f"{records}/page").headers["content-type"].startswith("text/html")
        assert api.get(f"{records}/SCREENSHOT").headers["content-type"] == "image/png"
        custom = api.get(f"{records}/with-metadata")
        assert (custom.content, custom.headers["content-type"]) == (b"\x00\x01", "application/x-custom")


def test_export_gives_a_folder_crawlee_reads(server: Server, tmp_path: Path) -> None:
    with server.client() as api:
        api.post("/key-value-stores", params={"name": "to-export"})
        records = "/key-value-stores/~to-export/records"
        api.put(f"{records}/INPUT", json={"a": [1, 2]})
        api.put(f"{records}/note", content="plain", headers={"content-type": "text/plain; charset=utf-8"})
        api.put(f"{records}/blob", content=PNG, headers={"content-type": "application/octet-stream"})
        big = {"text": "x" * 50_000}
        gzipped = gzip.compress(json.dumps(big).encode())
        api.put(
            f"{records}/gz",
            content=gzipped,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
    done = satchel(server, "export", "~to-export", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "4 records written" in done.stdout
    assert read_with_crawlee(tmp_path / "out", "to-export") == {
        "INPUT": {"a": [1, 2]},
        "blob": PNG,
        "gz": big,
        "note": "plain",
    }
    # And back in under another name: the round trip keeps keys, bytes and types.
    done = satchel(
        server, "import", str(tmp_path / "out" / "key_value_stores" / "to-export"), "--store", "back"
    )
    assert done.returncode == 0, done.stderr
    with server.client() as api:
        for key in ("INPUT", "note", "blob", "gz"):
            first = api.get(f"/key-value-stores/~to-export/records/{key}")
            again = api.get(f"/key-value-stores/~back/records/{key}")
            assert (again.content, again.headers["content-type"]) == (
                first.content,
                first.headers["content-type"],
            )


def test_import_refuses_what_it_cannot_name(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "storage" / "key_value_stores" / "Under_Score"
    folder.mkdir(parents=True)
    (folder / "k.txt").write_text("v")
    done = satchel(server, "import", str(tmp_path / "storage"))
    assert done.returncode == 1, done.stderr  # nothing imported
    assert "--store" in done.stderr
    done = satchel(server, "import", str(tmp_path / "storage"), "--store", "renamed")
    assert done.returncode == 0, done.stderr
    assert httpx.get(f"{server.api}/key-value-stores/~renamed/records/k", headers=_auth(server)).text == "v"
    missing = satchel(server, "export", "~no-such-store", str(tmp_path / "x"))
    assert missing.returncode != 0
    assert "not found" in missing.stderr


def _auth(server: Server) -> dict[str, str]:
    return {"authorization": f"Bearer {server.token}"}
