"""Hostile input, the shared part: a raw client that sends bytes exactly as written and reads the answer with
h11, the `Case` a table row is, the rule every case is checked by, and the key-value server the
tests/test_hostile_*.py tables are sent to (seeded, so a table can show it changed nothing).

The rule for every case: the status it must get, with the API's error envelope on an error the app answers
(or the documented success), never a 5xx, never a hang.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import brotli
import h11
import httpx
import orjson

from satchel.service.signing import (
    expiring_record_signature,
    hmac_signature,
    record_signature,
    storage_signature,
)
from tests.harness.backends import Backends
from tests.harness.cli import run_cli_here
from tests.harness.server import Server, start_server, stop_server
from tests.harness.summaries import summary

MIB = 1024 * 1024
# The key-value server's limits: a low record limit, so the size cases stay small.
MAX_RECORD = 2 * MIB
MAX_DECODED = 16 * MIB
SEED_NAME = "hostile-seed"
SCRATCH_NAME = "hostile-scratch"
FORGED_TOKEN = "apify_api_" + "f" * 36
# A reply needs to come within this; a server that stalls on bad input fails the case rather than the run.
REPLY_TIMEOUT = 15.0
# What a seeded record holds and what the content-encoding cases compress.
TEXT = b"hello, hostile world " * 50
# Targets in the key-value tables: {sid} is the seeded store (read, or written and refused), {scratch} a store
# the cases may change.
STORE = "/key-value-stores/{sid}"
SCRATCH = "/key-value-stores/{scratch}"
REC = STORE + "/records/"
SCRATCH_REC = SCRATCH + "/records/"
# The endpoints that take a JSON body, each with its method and target.
JSON_ROUTES = {
    "store-put": ("PUT", SCRATCH),
    "store-post": ("POST", "/key-value-stores"),
    "share-put": ("PUT", SCRATCH + "/shares/bob"),
}


def enc(text: str) -> str:
    return quote(text, safe="")


# --- the raw client


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        data = orjson.loads(self.body)
        assert set(data) == {"error"}, data
        assert set(data["error"]) == {"type", "message"}, data
        assert isinstance(data["error"]["type"], str)
        assert data["error"]["type"]
        assert isinstance(data["error"]["message"], str)
        assert data["error"]["message"]
        return data["error"]  # type: ignore[no-any-return]


def exchange(port: int, data: bytes, *, head: bool = False, half_close: bool = False) -> Reply:
    """Send bytes as they are; read one response. The sending runs beside the reading, so a server that
    answers before the body is in (a 413) is heard rather than lost to a reset."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT)

    def send() -> None:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close early; its answer is what counts

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="HEAD" if head else "GET", target="/", headers=[("host", "x")]))
    conn.send(h11.EndOfMessage())
    status = 0
    headers: dict[str, str] = {}
    body = bytearray()
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                conn.receive_data(chunk)
                continue
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    except TimeoutError as exc:
        raise AssertionError(f"no complete answer within {REPLY_TIMEOUT} s") from exc
    finally:
        sock.close()
        sender.join(5)
    return Reply(status, headers, bytes(body))


def build(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    length: bool = True,
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if length and (body or method in ("PUT", "POST")):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


# --- the cases


@dataclass
class Case:
    category: str
    name: str
    method: str
    target: str  # after /v2 unless it starts with "//" (then taken as is, minus one slash); {names} filled in
    status: int
    type: str | None = None  # the error type; None for a success or an answer with no body
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    token: str | None = "admin"  # admin, bob, revoked, forged, or None for no token
    raw: bytes | None = None  # the whole request, bytes as they are ({names} filled in)
    envelope: bool = True  # False where the HTTP server itself refuses the bytes, before the app sees them
    half_close: bool = False

    @property
    def id(self) -> str:
        return f"{self.category}:{self.name}"


class Table:
    """The rows of one module's table, added with `case(...)` as they are written."""

    def __init__(self) -> None:
        self.cases: list[Case] = []

    def case(
        self,
        category: str,
        name: str,
        method: str,
        target: str,
        status: int,
        type: str | None = None,
        **kw: Any,
    ) -> None:
        self.cases.append(Case(category, name, method, target, status, type, **kw))

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.cases]


# Cases sent per category over the whole run, for the report after the tests.
SENT: Counter[str] = Counter()


@summary("hostile input: cases sent per category")
def _sent_summary() -> list[str]:
    if not SENT:
        return []
    width = max(map(len, SENT))
    lines = [f"  {category:<{width}}  {n}" for category, n in sorted(SENT.items())]
    return [*lines, f"  {'total':<{width}}  {sum(SENT.values())}"]


# --- the key-value server and its seeds


@dataclass
class Hostile:
    server: Server
    port: int
    values: dict[str, str]
    tokens: dict[str, str]
    seed_digest: str = ""


SEED_RECORDS: dict[str, tuple[str, str | None, bytes]] = {
    "k1": ("text/plain", None, b"hello"),
    "json": ("application/json", None, b'{"a": [1, 2, 3]}'),
    "gz": ("text/plain", "gzip", gzip.compress(TEXT)),
    "br": ("application/json", "br", brotli.compress(b'{"b": true}')),
    "blob": ("application/octet-stream", None, os.urandom(300 * 1024)),
    "...": ("text/plain", None, b"dots"),
}


# The scratch store's records: a key of the longest length allowed, a record of the largest size allowed.
SCRATCH_RECORDS = {"a" * 256: b"ok", "big": b"a" * MAX_RECORD}


def seed_digest(http: httpx.Client, sid: str) -> str:
    """One digest over the seeded records' stored bytes, types and encodings, the key list and the store."""
    digest = hashlib.sha256()
    keys = http.get(f"/key-value-stores/{sid}/keys").json()["data"]["items"]
    digest.update(orjson.dumps(sorted((k["key"], k["size"]) for k in keys)))
    store = http.get(f"/key-value-stores/{sid}").json()["data"]
    digest.update(orjson.dumps([store["name"], store["generalAccess"], store["title"]]))
    for key in SEED_RECORDS:
        response = http.get(f"/key-value-stores/{sid}/records/{quote(key, safe='')}",
                            headers={"accept-encoding": "gzip, br, deflate"})  # fmt: skip
        assert response.status_code == 200, response.text
        digest.update(key.encode())
        digest.update(response.headers["content-type"].encode())
        digest.update(response.headers.get("content-encoding", "").encode())
        digest.update(hashlib.sha256(response.read()).digest())
    return digest.hexdigest()


def send(state: Hostile, c: Case) -> Reply:
    return exchange(state.port, request_bytes(c, state), head=c.method == "HEAD", half_close=c.half_close)


def check_case(state: Hostile, c: Case) -> None:
    """Send one case and hold its answer to the rule: the status it must get, the envelope on an error."""
    reply = send(state, c)
    SENT[c.category] += 1
    assert reply.status < 500, (reply.status, reply.body[:500])
    assert reply.status == c.status, (reply.status, reply.body[:500])
    if c.method == "HEAD":
        assert reply.body == b""
        return
    if c.status >= 400 and c.envelope:
        error = reply.error()
        if c.type is not None:
            assert error["type"] == c.type, error
        assert reply.headers.get("content-type", "").startswith("application/json")


def check_concurrently(state: Hostile, cases: list[Case]) -> None:
    """A table eight requests at a time: orders differ, so only the rules hold, never a 5xx and always the
    envelope on an error the app answers."""
    with ThreadPoolExecutor(8) as pool:
        for c, reply in zip(cases, pool.map(lambda c: send(state, c), cases), strict=True):
            assert 200 <= reply.status < 500, (c.id, reply.status, reply.body[:300])
            if reply.status >= 400 and c.envelope and c.method != "HEAD":
                reply.error()


def assert_log_clean(server: Server) -> None:
    """Nothing the server logged was an unexpected error."""
    port = server.base_url.rsplit(":", 1)[1]
    text = (server.data_dir.parent / f"server-{port}.log").read_text(errors="replace")
    assert "unexpected error" not in text, text[-5000:]
    assert "Traceback" not in text, text[-5000:]


def assert_kv_seed_unchanged(state: Hostile) -> None:
    """The seeded store is as it was, and the server still stores and serves a record."""
    sid = state.values["sid"]
    with state.server.client() as http:
        http.headers["accept-encoding"] = "identity"
        assert seed_digest(http, sid) == state.seed_digest
        response = http.put(f"/key-value-stores/{sid}/records/after", content=b"fine",
                            headers={"content-type": "text/plain"})  # fmt: skip
        assert response.status_code == 201
        assert http.get(f"/key-value-stores/{sid}/records/after").content == b"fine"
        assert http.delete(f"/key-value-stores/{sid}/records/after").status_code == 204


# Seeding takes three CLI runs and dozens of requests: each kind of seeded server is seeded once per test run
# and engine combination, and every server is started on a fresh copy of that data (the same ids, secrets and
# tokens): the data dir, and on the scale-out engines a database made from the seeded one and a bucket copied.
_SEEDED: dict[tuple[str, str], tuple[Path, dict[str, str], dict[str, str], dict[str, str]]] = {}
Seed = Callable[[Server, dict[str, str]], dict[str, str]]


@dataclass
class Engine:
    """The engine combination a seeded server runs on, and the backends it needs beyond the data dir."""

    combo: str = "sqlite+files"
    backends: Backends | None = None

    @property
    def id(self) -> str:
        return self.combo

    def locations(self, copy_of: dict[str, str] | None = None) -> dict[str, str]:
        if self.backends is None:
            return {"database": "", "blob_store": ""}
        if copy_of is None:
            return self.backends.locations(self.combo)
        return self.backends.copy(self.combo, copy_of)

    def env(self, where: dict[str, str]) -> dict[str, str]:
        extra = self.backends.env(self.combo) if self.backends is not None else {}
        return {"SATCHEL_DATABASE": where["database"], "SATCHEL_BLOB_STORE": where["blob_store"], **extra}


SQLITE = Engine()


@contextmanager
def seeded(
    kind: str, root: Path, env: dict[str, str], seed: Seed, engine: Engine = SQLITE
) -> Iterator[tuple[Server, dict[str, str], dict[str, str]]]:
    """A server on a copy of data made by users_and_tokens and `seed` (which gives the values to keep), with
    the tokens and those values; stopped after."""
    if (kind, engine.combo) not in _SEEDED:
        template = Path(tempfile.mkdtemp(prefix=f"seeded-{kind}-", dir=root.parent)) / "data"
        where = engine.locations()
        server = start_server(template, env={**env, **engine.env(where)})
        try:
            tokens = users_and_tokens(server, where)
            values = seed(server, tokens)
            assert_log_clean(server)
        finally:
            stop_server(server)
        _SEEDED[kind, engine.combo] = (template, where, tokens, values)
    template, where, tokens, values = _SEEDED[kind, engine.combo]
    shutil.copytree(template, root / "data")
    copied = where if engine.backends is None else engine.locations(copy_of=where)
    server = start_server(root / "data", env={**env, **engine.env(copied)})
    try:
        yield server, dict(tokens), dict(values)
    finally:
        stop_server(server)


@contextmanager
def kv_hostile(root: Path, engine: Engine = SQLITE) -> Iterator[Hostile]:
    """A server with the key-value tables' limits, seeded; stopped after."""
    env = {"SATCHEL_MAX_RECORD_BYTES": str(MAX_RECORD), "SATCHEL_MAX_DECODED_BYTES": str(MAX_DECODED)}
    with seeded("kv", root, env, seed_kv, engine) as (server, tokens, _):
        yield kv_state(server, tokens)


def check_table_leaves_kv_seed_unchanged(root: Path, cases: list[Case], engine: Engine = SQLITE) -> None:
    """A whole table, eight at a time, on a server of its own (so the one-at-a-time cases, in whatever order,
    never meet what it created): the rules hold, the seeded store is unchanged after it, nothing logged."""
    with kv_hostile(root, engine) as state:
        check_concurrently(state, cases)
        assert_kv_seed_unchanged(state)
        assert_log_clean(state.server)


def users_and_tokens(server: Server, where: dict[str, str]) -> dict[str, str]:
    """The tokens a case may send: the admin's, another user's (bob), a revoked one and a forged one."""
    options = [f"--{name.replace('_', '-')}={value}" for name, value in where.items() if value]

    def cli(*args: str) -> str:
        return run_cli_here(*args, *options, data_dir=server.data_dir)

    bob = cli("users", "create", "bob").split("API token: ")[1].strip()
    revoked = cli("tokens", "create", "admin").strip().split()[-1]
    cli("tokens", "revoke", revoked)
    return {"admin": server.token, "bob": bob, "revoked": revoked, "forged": FORGED_TOKEN}


def seed_kv(server: Server, tokens: dict[str, str]) -> dict[str, str]:
    # httpx decodes nothing here: the digest is over the bytes as stored.
    with server.client() as http:
        http.headers["accept-encoding"] = "identity"
        seed = http.post("/key-value-stores", params={"name": SEED_NAME}).json()["data"]
        scratch = http.post("/key-value-stores", params={"name": SCRATCH_NAME}).json()["data"]
        http.post("/key-value-stores", params={"name": "hostile-odd"}, json={"schema": {"collections": [1]}})
        for key, (ctype, encoding, body) in SEED_RECORDS.items():
            headers = {"content-type": ctype, **({"content-encoding": encoding} if encoding else {})}
            response = http.put(f"/key-value-stores/{seed['id']}/records/{quote(key, safe='')}",
                                content=body, headers=headers)  # fmt: skip
            assert response.status_code == 201, response.text
        # What cases read back from the scratch store, there before any case runs (in whatever order).
        for key, body in SCRATCH_RECORDS.items():
            response = http.put(f"/key-value-stores/{scratch['id']}/records/{key}", content=body)
            assert response.status_code == 201, response.text
    return {}


def kv_state(server: Server, tokens: dict[str, str]) -> Hostile:
    """The values the key-value tables fill in, signatures made now included, and the seed's digest."""
    with server.client() as http:
        http.headers["accept-encoding"] = "identity"
        seed = http.get(f"/key-value-stores/~{SEED_NAME}").json()["data"]
        scratch = http.get(f"/key-value-stores/~{SCRATCH_NAME}").json()["data"]
        secret, sid = seed["urlSigningSecretKey"], seed["id"]
        sid2, secret2 = scratch["id"], scratch["urlSigningSecretKey"]
        now_ms = int(time.time() * 1000)

        def forged_storage(version: str, expires: str) -> str:
            mac = hmac_signature(secret, f"{version}.{expires}.{sid}")
            return base64.urlsafe_b64encode(f"{version}.{expires}.{mac}".encode()).decode()

        values = {
            "sid": sid,
            "scratch": sid2,
            "admin_token": server.token,
            "revoked_token": tokens["revoked"],
            "sig_k1": record_signature(secret, "k1"),
            "sig_gz": record_signature(secret, "gz"),
            "sig_k1_scratch": record_signature(secret2, "k1"),
            "sig_keys": storage_signature(secret, sid),
            "sig_k1_expiring": quote(expiring_record_signature(secret, "k1", now_ms + 3_600_000), safe=""),
            "sig_k1_expiring_expired": quote(expiring_record_signature(secret, "k1", now_ms - 1000), safe=""),
            "sig_gz_expiring": quote(expiring_record_signature(secret, "gz", now_ms + 3_600_000), safe=""),
            "sig_keys_unpadded": storage_signature(secret, sid).rstrip("="),
            "sig_keys_future": storage_signature(secret, sid, now_ms + 3_600_000),
            "sig_keys_expired": storage_signature(secret, sid, now_ms - 1000),
            "sig_keys_scratch": storage_signature(secret2, sid2),
            "sig_keys_v1": forged_storage("1", "0"),
            "sig_keys_negative": forged_storage("0", "-5"),
            "sig_keys_huge": forged_storage("0", "9" * 400),
            "sig_keys_parts": forged_storage("0", "0.0"),
            "sig_keys_digits": forged_storage("0", "9" * 5000),
            "sig_keys_non_ascii": base64.urlsafe_b64encode("0.0.été".encode()).decode(),
        }
        return Hostile(server, int(server.base_url.rsplit(":", 1)[1]), values, tokens, seed_digest(http, sid))


def fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def request_bytes(c: Case, state: Hostile) -> bytes:
    values = {**state.values, "token": state.tokens["admin"]}
    if c.raw is not None:
        return fill(c.raw.decode("latin-1"), values).encode("latin-1")
    target = c.target[1:] if c.target.startswith("//") else "/v2" + c.target
    headers = [(name, fill(value, values)) for name, value in c.headers]
    if c.token is not None:
        headers.append(("Authorization", f"Bearer {state.tokens[c.token]}"))
    return build(c.method, fill(target, values), headers, c.body)


def group_rss(pgid: int) -> int:
    """Resident memory of every process in the server's process group (granian runs workers as children)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


class PeakRss:
    """Samples the server's memory in the background while a block runs."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.base = group_rss(pgid)
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, group_rss(self.pgid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.base
