"""/health, /ready and /metrics's access: outside /v2, without a token, never rate-limited, and /ready naming
the engine that does not answer."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from satchel.settings import Settings
from tests.conftest import TOKEN, Server, every_engine
from tests.harness.inprocess import BASE_URL, InProcessApp

server = every_engine(in_process=True)


@contextmanager
def started(data_dir: Path, **overrides: Any) -> Iterator[tuple[InProcessApp, httpx.Client]]:
    """The app in this process with these settings, and a client at its root (not /v2) with no token."""
    options: dict[str, Any] = {
        "token": TOKEN, "rate_limit": False, "log_level": "warning", "public_url": BASE_URL, **overrides
    }  # fmt: skip
    app = InProcessApp(Settings(data_dir=data_dir, **options))
    try:
        app.bootstrap(TOKEN)
        with httpx.Client(transport=app.transport, base_url=BASE_URL) as client:
            yield app, client
    finally:
        app.close()


@contextmanager
def app_with(data_dir: Path, **overrides: Any) -> Iterator[httpx.Client]:
    with started(data_dir, **overrides) as (_, client):
        yield client


def root_client(srv: Server) -> httpx.Client:
    assert srv.app is not None
    return httpx.Client(transport=srv.app.transport, base_url=srv.base_url)


def test_ready_on_every_engine(server: Server) -> None:
    with root_client(server) as http:
        ready = http.get("/ready")
        health = http.get("/health")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert ready.headers["cache-control"] == "no-store"


def test_probes_need_no_token_and_are_never_rate_limited(tmp_path: Path) -> None:
    limits = {"rate_limit": True, "rate_limit_global_per_minute": 5, "rate_limit_wait_seconds": 0}
    with app_with(tmp_path / "data", **limits) as http:
        api = [http.get("/v2/users/me").status_code for _ in range(10)]
        probes = [http.get(path).status_code for path in ("/health", "/ready", "/metrics") * 10]
        # A token that is not valid is not even looked at.
        bad_token = http.get("/health", headers={"authorization": "Bearer nonsense"})
    assert 429 in api  # the API's limit is in force for this caller...
    assert set(probes) == {200}  # ...and the probes are not counted against it
    assert bad_token.status_code == 200


def test_probes_answer_get_and_head_only(tmp_path: Path) -> None:
    with app_with(tmp_path / "data") as http:
        head = http.head("/health")
        post = http.post("/ready", content=b"x")
        trailing = http.get("/health/")
    assert (head.status_code, head.content) == (200, b"")
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"
    assert post.json()["error"]["type"] == "method-not-allowed"
    assert trailing.status_code == 404  # only the exact paths; the rest is the API's 404


def test_ready_names_a_missing_blob_folder(tmp_path: Path) -> None:
    with app_with(tmp_path / "data") as http:
        assert http.get("/ready").status_code == 200
        (tmp_path / "data" / "blobs").rename(tmp_path / "elsewhere")
        gone = http.get("/ready")
        alive = http.get("/health")
        (tmp_path / "elsewhere").rename(tmp_path / "data" / "blobs")
        back = http.get("/ready")
    assert gone.status_code == 503
    assert gone.json()["status"] == "unavailable"
    assert list(gone.json()["failed"]) == ["blobStore"]
    assert alive.status_code == 200  # the process lives: only readiness is lost
    assert back.status_code == 200


class Relay:
    """A TCP relay to PostgreSQL that can be cut: the database then stops answering, as on a lost network."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.cut = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data or self.cut.is_set():
                return  # cut: bytes are swallowed, nothing answers, nothing closes
            sink.sendall(data)

    def stop_answering(self) -> None:
        self.cut.set()
        self.listener.close()

    def close(self) -> None:
        self.stop_answering()
        for sock in self.sockets:
            sock.close()


def test_ready_names_an_object_store_that_stops_answering(
    tmp_path: Path, backends: Any, request: pytest.FixtureRequest
) -> None:
    location = httpx.URL(backends.locations("sqlite+s3")["blob_store"])
    endpoint = httpx.URL(location.params["endpoint"])
    relay = Relay((endpoint.host, endpoint.port or 80))
    request.addfinalizer(relay.close)
    relayed = f"s3://{location.host}?endpoint=http://127.0.0.1:{relay.port}"
    with app_with(tmp_path / "data", blob_store=relayed) as http:
        assert http.get("/ready").status_code == 200
        relay.stop_answering()
        ready = http.get("/ready", timeout=30)
        # Cut for good before the app stops, so its shutdown does not wait out the timeouts of the
        # connections nobody answers any more.
        relay.close()
    assert ready.status_code == 503
    assert list(ready.json()["failed"]) == ["blobStore"]
    assert "2 s" in ready.json()["failed"]["blobStore"]


def test_ready_names_a_database_that_stops_answering(
    tmp_path: Path, backends: Any, request: pytest.FixtureRequest
) -> None:
    url = httpx.URL(backends.locations("postgres+files")["database"])
    relay = Relay((url.host, url.port or 5432))
    request.addfinalizer(relay.close)
    relayed = str(url.copy_with(port=relay.port))
    with app_with(tmp_path / "data", database=relayed) as http:
        assert http.get("/ready").status_code == 200
        relay.stop_answering()
        ready = http.get("/ready", timeout=30)
        # Cut for good before the app stops, so its shutdown does not wait out the timeouts of the
        # connections nobody answers any more.
        relay.close()
    assert ready.status_code == 503
    assert list(ready.json()["failed"]) == ["database"]
    # The probe's own bound answered, not the driver's timeout for the query it gave up on.
    assert "2 s" in ready.json()["failed"]["database"]


def test_metrics_may_be_for_the_admin_only(tmp_path: Path) -> None:
    with started(tmp_path / "data", metrics_admin_only=True) as (app, http):
        _, someone = app.run(app.app.services.users.create("someone"))
        anonymous = http.get("/metrics")
        other = http.get("/metrics", headers={"authorization": f"Bearer {someone}"})
        admin = http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        by_query = http.get("/metrics", params={"token": TOKEN})
        wrong = http.get("/metrics", headers={"authorization": "Bearer apify_api_" + "x" * 36})
        health = http.get("/health")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "token-not-provided"
    assert other.status_code == 403
    assert other.json()["error"]["type"] == "insufficient-permissions"
    assert admin.status_code == 200
    assert admin.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert by_query.status_code == 200
    assert wrong.status_code == 401
    assert health.status_code == 200  # the probes stay open


def test_metrics_off(tmp_path: Path) -> None:
    with app_with(tmp_path / "data", metrics=False) as http:
        off = http.get("/metrics")
        ready = http.get("/ready")
    assert off.status_code == 404
    assert ready.status_code == 200


def test_ready_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    with app_with(tmp_path / "data") as http:
        for _ in range(3):
            assert http.get("/ready").status_code == 200
    blobs = tmp_path / "data" / "blobs"
    assert [p for p in blobs.rglob("*") if p.is_file()] == []
    shutil.rmtree(tmp_path / "data")
