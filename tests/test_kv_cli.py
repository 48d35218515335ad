"""`satchel kv` against a real server, run as a script runs it: bodies byte for byte both ways, stores named
by id, name or USERNAME~NAME, stdout holding nothing but the data, and an exit code for each kind of failure
(3 not found, 4 refused, 5 a partial copy) with one line on stderr and never a traceback. `cp` takes only
files directly in a folder, follows no link, and writes nothing outside the folder it is given, even for
keys a hostile server makes up."""

from __future__ import annotations

import gzip
import json
import os
import pty
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Server
from tests.harness.cli import run_cli_here
from tests.harness.disk import immutable

BINARY = bytes(range(256)) * 4096 + b"\r\n\x00end"  # every byte value, CR LF and NUL: ~1 MiB
BIG = 128 * 1024 * 1024  # a record far larger than what a streaming command holds in memory


def own_environment() -> dict[str, str]:
    """This process's environment without Satchel's or Apify's variables: a command's defaults only."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SATCHEL_", "APIFY_"))}


def environment(url: str, token: str) -> dict[str, str]:
    return own_environment() | {"SATCHEL_URL": url, "SATCHEL_TOKEN": token}


def kv(
    server: Server | str, *args: str, token: str | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`satchel kv ARGS` with SATCHEL_URL and SATCHEL_TOKEN set, as a script would run it."""
    if isinstance(server, Server):
        env = environment(server.base_url, token or server.token)
    else:
        env = environment(server, token or "")
    return subprocess.run(
        [sys.executable, "-m", "satchel", "kv", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def failed(done: subprocess.CompletedProcess[bytes], code: int) -> str:
    """The one line a failed command says, once it is checked that it failed as a script is told."""
    stderr = done.stderr.decode()
    assert done.returncode == code, (done.returncode, stderr)
    assert done.stdout == b""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def ok(done: subprocess.CompletedProcess[bytes]) -> bytes:
    assert done.returncode == 0, done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()
    return done.stdout


def partial(done: subprocess.CompletedProcess[bytes]) -> str:
    """What a copy that skipped some things says on stderr (its stdout stays empty; it exits 5)."""
    stderr = done.stderr.decode()
    assert done.returncode == 5, stderr
    assert done.stdout == b""
    assert "Traceback" not in stderr
    return stderr


def new_store(http: httpx.Client) -> str:
    name = f"kv-{uuid.uuid4().hex[:12]}"
    assert http.post("/key-value-stores", params={"name": name}).status_code == 201
    return name


def record(http: httpx.Client, name: str, key: str) -> httpx.Response:
    response = http.get(f"/key-value-stores/~{name}/records/{key}")
    assert response.status_code == 200, response.text
    return response


# --- put, get, ls, rm


def test_put_and_get_carry_every_byte(server: Server, http: httpx.Client, tmp_path: Path) -> None:
    name = new_store(http)
    source = tmp_path / "blob.bin"
    source.write_bytes(BINARY)
    assert ok(kv(server, "put", name, "blob", str(source))) == b""
    assert ok(kv(server, "put", name, "piped", "-", stdin=BINARY)) == b""
    assert record(http, name, "blob").content == BINARY
    assert record(http, name, "piped").content == BINARY

    assert ok(kv(server, "get", name, "blob")) == BINARY
    target = tmp_path / "out.bin"
    assert ok(kv(server, "get", name, "piped", "-o", str(target))) == b""
    assert target.read_bytes() == BINARY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin", "out.bin"]  # no part file left


def test_with_nothing_set_it_finds_the_server_started_on_the_data_dir(
    server: Server, http: httpx.Client
) -> None:
    """No SATCHEL_URL or SATCHEL_TOKEN: the server `satchel serve` last ran on the data dir (here on a port
    of the test's choosing, not the default), with the admin token it keeps there."""
    name = new_store(http)
    assert http.put(f"/key-value-stores/~{name}/records/k", content=b"found").status_code == 201
    env = own_environment() | {"SATCHEL_DATA_DIR": str(server.data_dir)}
    command = [sys.executable, "-m", "satchel", "kv", "get", name, "k"]
    done = subprocess.run(command, capture_output=True, env=env, timeout=120, check=False)
    assert ok(done) == b"found"


def test_data_dir_names_the_local_server_from_any_folder(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    """From a folder with no data dir, --data-dir says where the local server's address and token are."""
    name = new_store(http)
    assert http.put(f"/key-value-stores/~{name}/records/k", content=b"there").status_code == 201

    def get(*options: str) -> subprocess.CompletedProcess[bytes]:
        command = [sys.executable, "-m", "satchel", "kv", "get", name, "k", *options]
        env = own_environment()
        return subprocess.run(command, capture_output=True, env=env, cwd=tmp_path, timeout=120, check=False)

    assert "No token" in failed(get(), 2)  # nothing here to find them by
    assert ok(get("--data-dir", str(server.data_dir))) == b"there"


def test_mk_makes_a_store_of_the_token_user_once_and_prints_its_id(
    server: Server, http: httpx.Client
) -> None:
    name = f"kv-{uuid.uuid4().hex[:12]}"
    made = ok(kv(server, "mk", name)).decode().strip()
    store = http.get(f"/key-value-stores/~{name}").json()["data"]
    assert made == store["id"]
    assert ok(kv(server, "mk", f"~{name}")).decode().strip() == made  # there already: the same store
    ok(kv(server, "put", name, "k", "-", stdin=b"in it"))
    assert record(http, name, "k").content == b"in it"
    assert "name" in failed(kv(server, "mk", "not_a_name"), 1).lower()


def test_stdin_longer_than_what_is_held_streams(server: Server, http: httpx.Client) -> None:
    """Past STDIN_HELD (8 MiB) stdin goes out as it is read, without a length."""
    name = new_store(http)
    body = BINARY * 9
    assert len(body) > 8 * 1024 * 1024
    ok(kv(server, "put", name, "long", "-", stdin=body))
    assert record(http, name, "long").content == body


def test_a_compressed_record_comes_out_as_it_was_put(server: Server, http: httpx.Client) -> None:
    name = new_store(http)
    body = b'{"many": "words"}' * 1000
    response = http.put(
        f"/key-value-stores/~{name}/records/packed",
        content=gzip.compress(body),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 201
    assert ok(kv(server, "get", name, "packed")) == body


def test_put_guesses_the_content_type_unless_told(server: Server, http: httpx.Client, tmp_path: Path) -> None:
    name = new_store(http)
    (tmp_path / "page.html").write_text("<p>hi</p>")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / "noext").write_bytes(b"x")
    ok(kv(server, "put", name, "page", str(tmp_path / "page.html")))
    ok(kv(server, "put", name, "photo", str(tmp_path / "photo.png")))
    ok(kv(server, "put", name, "plain", str(tmp_path / "noext")))
    ok(kv(server, "put", name, "told", str(tmp_path / "photo.png"), "--content-type", "image/x-mine"))
    ok(kv(server, "put", name, "state.json", "-", stdin=b'{"a": 1}'))  # stdin: the key's name tells
    types = {
        key: record(http, name, key).headers["content-type"]
        for key in ("page", "photo", "plain", "told", "state.json")
    }
    assert types == {
        "page": "text/html; charset=utf-8",
        "photo": "image/png",
        "plain": "application/octet-stream",
        "told": "image/x-mine",
        "state.json": "application/json; charset=utf-8",
    }


def test_ls_lists_keys_in_order_with_a_prefix_or_as_json(server: Server, http: httpx.Client) -> None:
    name = new_store(http)
    assert ok(kv(server, "ls", name)) == b""
    assert json.loads(ok(kv(server, "ls", name, "--json"))) == []
    keys = ["b-2", "a", "b-1", "c"]
    for key in keys:
        ok(kv(server, "put", name, key, "-", stdin=key.encode() * 3))
    assert ok(kv(server, "ls", name)).decode().splitlines() == sorted(keys)
    assert ok(kv(server, "ls", name, "--prefix", "b-")).decode().splitlines() == ["b-1", "b-2"]
    items = json.loads(ok(kv(server, "ls", name, "--json")))
    assert [(i["key"], i["size"]) for i in items] == [(k, len(k) * 3) for k in sorted(keys)]


def test_ls_reads_every_page(server: Server, http: httpx.Client) -> None:
    """More keys than one page of the listing (1,000) holds."""
    name = new_store(http)
    store_id = http.get(f"/key-value-stores/~{name}").json()["data"]["id"]
    keys = [f"k{i:05d}" for i in range(1203)]
    for key in keys:
        assert http.put(f"/key-value-stores/{store_id}/records/{key}", content=b"x").status_code == 201
    assert ok(kv(server, "ls", name)).decode().splitlines() == keys


def test_a_store_is_named_by_id_name_or_owner_and_name(server: Server, http: httpx.Client) -> None:
    name = new_store(http)
    store = http.get(f"/key-value-stores/~{name}").json()["data"]
    ok(kv(server, "put", name, "here", "-", stdin=b"1"))
    for ref in (store["id"], name, f"~{name}", f"{store['username']}~{name}"):
        assert ok(kv(server, "ls", ref)) == b"here\n", ref
    assert ok(kv(server, "get", store["id"], "here")) == b"1"


def test_rm_deletes_and_says_when_there_was_nothing(server: Server, http: httpx.Client) -> None:
    name = new_store(http)
    ok(kv(server, "put", name, "gone", "-", stdin=b"1"))
    assert ok(kv(server, "rm", name, "gone")) == b""
    assert http.get(f"/key-value-stores/~{name}/records/gone").status_code == 404
    assert failed(kv(server, "rm", name, "gone"), 3) == f"Error: Record 'gone' was not found in '{name}'."
    assert ok(kv(server, "rm", "--force", name, "gone")) == b""


# --- failures, as a script sees them


def test_what_is_not_there_exits_3(server: Server, http: httpx.Client) -> None:
    name = new_store(http)
    assert (
        failed(kv(server, "ls", "no-such-store"), 3)
        == "Error: Key-value store 'no-such-store' was not found."
    )
    assert failed(kv(server, "get", "no-such-store", "k"), 3).startswith("Error: Key-value store")
    assert failed(kv(server, "put", "no-such-store", "k", "-", stdin=b"1"), 3).startswith("Error: Key-value")
    assert (
        failed(kv(server, "get", name, "absent"), 3) == f"Error: Record 'absent' was not found in '{name}'."
    )


def test_get_into_a_file_that_cannot_be_written_names_it(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    """The error named the temporary file beside it (.satchel-....part), which the user never gave."""
    name = new_store(http)
    http.put(f"/key-value-stores/~{name}/records/k", content=b"v")
    missing = tmp_path / "no-such-folder" / "x"
    assert failed(kv(server, "get", name, "k", "-o", str(missing)), 1) == (
        f"Error: {missing}: No such file or directory"
    )


def test_a_refused_token_exits_4(server: Server, http: httpx.Client, tmp_path: Path) -> None:
    name = new_store(http)
    store_id = http.get(f"/key-value-stores/~{name}").json()["data"]["id"]
    assert failed(kv(server, "ls", store_id, token="apify_api_" + "x" * 36), 4).startswith("Error: ")
    reader = f"reader{uuid.uuid4().hex[:8]}"
    out = run_cli_here("users", "create", reader, data_dir=server.data_dir)
    reader_token = out.split("API token: ")[1].strip()
    # A stranger does not even learn that the store exists; a reader may read but not write.
    assert failed(kv(server, "ls", store_id, token=reader_token), 3)
    shared = http.put(f"/key-value-stores/{store_id}/shares/{reader}", json={"access": "READ"})
    assert shared.status_code == 200, shared.text
    assert ok(kv(server, "ls", store_id, token=reader_token)) == b""
    failed(kv(server, "put", store_id, "k", "-", stdin=b"1", token=reader_token), 4)
    failed(kv(server, "rm", store_id, "k", "--force", token=reader_token), 4)


def test_usage_errors_exit_2(server: Server, http: httpx.Client, tmp_path: Path) -> None:
    name = new_store(http)
    assert kv(server, "put", name, "bad key", "-", stdin=b"1").returncode == 2
    assert kv(server, "put", name, "k", str(tmp_path / "missing")).returncode == 2
    assert kv(server, "get", name).returncode == 2


def test_a_server_that_does_not_answer_exits_1(tmp_path: Path) -> None:
    down = kv("http://127.0.0.1:9", "ls", "anything", token="apify_api_" + "t" * 36)
    said = failed(down, 1)
    assert said.startswith("Error: Nothing answers at http://127.0.0.1:9: is the server running?")
    assert "--url (or SATCHEL_URL)" in said  # where a server that moved can be named


def test_a_reader_that_stops_early_gets_no_traceback(server: Server, http: httpx.Client) -> None:
    name = new_store(http)
    ok(kv(server, "put", name, "long", "-", stdin=BINARY * 8))
    env = environment(server.base_url, server.token)
    pipeline = f"{sys.executable} -m satchel kv get {name} long | head -c 10 >/dev/null"
    done = subprocess.run(["sh", "-c", pipeline], env=env, capture_output=True, timeout=60, check=False)
    assert b"Traceback" not in done.stderr, done.stderr
    assert b"Exception" not in done.stderr, done.stderr


# --- streaming


def peak_kib(*command: str) -> tuple[int, subprocess.CompletedProcess[bytes]]:
    """Run a command, and the most memory it held at once (KiB), read from its own process accounting."""
    measure = (
        "import resource, subprocess, sys;"
        "done = subprocess.run(sys.argv[1:]);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
        "sys.exit(done.returncode)"
    )
    done = subprocess.run(
        [sys.executable, "-c", measure, *command], capture_output=True, timeout=300, check=False
    )
    return int(done.stderr.decode().splitlines()[-1]), done


def test_large_records_stream_both_ways(server: Server, http: httpx.Client, tmp_path: Path) -> None:
    name = new_store(http)
    big = tmp_path / "big.bin"
    with open(big, "wb") as file:
        file.truncate(BIG)  # sparse: BIG bytes to send, none of them on this disk

    def peak(*args: str) -> int:
        where = ["--url", server.base_url, "--token", server.token]
        kib, done = peak_kib(sys.executable, "-m", "satchel", "kv", *args, *where)
        assert done.returncode == 0, done.stderr
        return kib

    idle = peak("ls", name)
    sent = peak("put", name, "big", str(big))
    back = tmp_path / "back.bin"
    fetched = peak("get", name, "big", "-o", str(back))
    assert back.stat().st_size == BIG
    assert http.get(f"/key-value-stores/~{name}/keys").json()["data"]["items"][0]["size"] == BIG
    # Holding the record whole would take BIG / 1024 KiB more than listing keys does.
    assert sent - idle < BIG // 1024 // 4, (idle, sent)
    assert fetched - idle < BIG // 1024 // 4, (idle, fetched)
    with open(back, "rb") as copy:
        assert copy.read(1024 * 1024) == bytes(1024 * 1024)


# --- cp


def test_cp_uploads_the_files_of_a_folder(server: Server, http: httpx.Client, tmp_path: Path) -> None:
    folder = tmp_path / "site"
    (folder / "nested").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>hi</h1>")
    (folder / "data.json").write_text('{"a": 1}')
    (folder / "blob").write_bytes(BINARY)
    (folder / "nested" / "inner.txt").write_text("not a key")
    (folder / "bad name.txt").write_text("spaces are not in keys")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the folder")
    (folder / "linked.txt").symlink_to(secret)
    os.mkfifo(folder / "pipe")
    name = f"up-{uuid.uuid4().hex[:10]}"  # no such store yet: cp makes it

    stderr = partial(kv(server, "cp", str(folder), name))
    skipped = sorted(line.split(":")[0] for line in stderr.splitlines() if line.startswith("skipped "))
    assert skipped == ["skipped bad name.txt", "skipped linked.txt", "skipped nested/", "skipped pipe"]
    assert "3 records copied" in stderr
    assert ok(kv(server, "ls", name)).decode().splitlines() == ["blob", "data.json", "index.html"]
    assert record(http, name, "blob").content == BINARY
    assert record(http, name, "index.html").headers["content-type"] == "text/html; charset=utf-8"
    assert record(http, name, "data.json").headers["content-type"] == "application/json; charset=utf-8"

    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "one").write_text("1")
    done = kv(server, "cp", f"{clean}/", name)  # into the store that is there now
    assert ok(done) == b""
    assert "1 record copied" in done.stderr.decode()


def test_cp_downloads_every_record_and_writes_only_inside(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    name = new_store(http)
    store_id = http.get(f"/key-value-stores/~{name}").json()["data"]["id"]
    long_key = "L" * 256  # a valid key, one byte longer than a file name may be
    bodies = {"a.txt": b"alpha", "blob": BINARY, "..x": b"dots", long_key: b"long"}
    for key, body in bodies.items():
        assert http.put(f"/key-value-stores/{store_id}/records/{key}", content=body).status_code == 201
    target = tmp_path / "out"
    target.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    (target / "a.txt").symlink_to(victim)  # a link planted where a record goes: replaced, not followed

    stderr = partial(kv(server, "cp", store_id, str(target)))
    assert f"skipped {long_key}: longer than a file name may be" in stderr
    assert "3 records copied" in stderr
    assert victim.read_bytes() == b"untouched"
    assert not (target / "a.txt").is_symlink()
    assert {p.name: p.read_bytes() for p in target.iterdir()} == {
        k: v for k, v in bodies.items() if k != long_key
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "victim"]


def test_cp_into_a_folder_that_takes_no_files_names_it(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    name = new_store(http)
    assert http.put(f"/key-value-stores/~{name}/records/k", content=b"v").status_code == 201
    target = tmp_path / "locked"
    target.mkdir()
    with immutable(target):
        said = failed(kv(server, "cp", f"~{name}", str(target)), 1)
    assert said == f"Error: {target}: Operation not permitted"  # not the scratch file's name


def test_cp_round_trips_a_folder(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    files = {f"file-{i}.bin": os.urandom(1000 * i) for i in range(5)}
    for file_name, body in files.items():
        (source / file_name).write_bytes(body)
    name = f"trip-{uuid.uuid4().hex[:10]}"
    ok(kv(server, "cp", str(source), name))
    back = tmp_path / "back" / "deeper"  # made as needed
    ok(kv(server, "cp", name, str(back)))
    assert {p.name: p.read_bytes() for p in back.iterdir()} == files


def test_cp_needs_one_folder_and_one_store(server: Server) -> None:
    assert kv(server, "cp", "store-a", "store-b").returncode == 2
    assert kv(server, "cp", "./a", "./b").returncode == 2


def test_cp_shows_a_progress_bar_only_on_a_terminal(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "one").write_bytes(BINARY)
    name = f"bar-{uuid.uuid4().hex[:10]}"
    plain = kv(server, "cp", str(source), name)
    assert ok(plain) == b""
    assert b"%" not in plain.stderr
    assert b"\r" not in plain.stderr

    main, secondary = pty.openpty()
    command = [sys.executable, "-m", "satchel", "kv", "cp", name, str(tmp_path / "back")]
    env = environment(server.base_url, server.token)
    try:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=secondary, env=env) as process:
            os.close(secondary)
            shown = b""
            while True:  # read as it comes, so that a full terminal buffer never stops the command
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: the command has closed its end
                    break
                if not chunk:
                    break
                shown += chunk
            assert process.stdout is not None
            assert process.stdout.read() == b""
            assert process.wait(timeout=60) == 0, shown
    finally:
        os.close(main)
    assert b"100%" in shown, shown


# --- a hostile server: keys that are no file names


class HostileServer(ThreadingHTTPServer):
    keys: list[str]  # what its listing holds


class Hostile(BaseHTTPRequestHandler):
    """A server that lists keys meant to climb out of the folder a download writes into."""

    server: HostileServer

    def do_GET(self) -> None:
        if self.path.startswith("/v2/key-value-stores/evil/keys"):
            items = [{"key": key, "size": 4} for key in self.server.keys]
            page = {"items": items, "isTruncated": False, "nextExclusiveStartKey": None}
            self.reply(200, json.dumps({"data": page}).encode(), "application/json")
        elif self.path.startswith("/v2/key-value-stores/evil/records/"):
            self.reply(200, b"evil", "text/plain")
        elif self.path.startswith("/v2/key-value-stores/evil"):
            self.reply(200, json.dumps({"data": {"id": "evil", "name": "evil"}}).encode(), "application/json")
        else:
            self.reply(404, b'{"error": {"type": "record-not-found", "message": "No."}}', "application/json")

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_cp_writes_nothing_outside_the_folder_whatever_the_keys(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out"
    climbing = ["../escaped", "sub/../../escaped2", str(tmp_path / "absolute"), ".."]
    httpd = HostileServer(("127.0.0.1", 0), Hostile)
    httpd.keys = [*climbing, "fine"]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        stderr = partial(kv(url, "cp", "evil", str(target), token="apify_api_" + "t" * 36))
    finally:
        httpd.shutdown()
        httpd.server_close()
    for key in climbing:
        assert f"skipped {key}: not a file name" in stderr
    found = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert found == ["a", "a/b", "a/b/out", "a/b/out/fine"]
