"""Rate limits: the reference's defaults, per-resource and global windows, 429s the clients retry, and Redis.

Windows are fixed (one second, one minute), so a burst can span two windows: the assertions allow up to
twice a limit to pass, and require that a burst far over it is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from apify_client import ApifyClient

from tests.conftest import Server, free_port, start_server, stop_server

ON = {"SATCHEL_RATE_LIMIT": "on"}


def burst(client: httpx.Client, method: str, url: str, count: int, **kwargs: object) -> list[httpx.Response]:
    return [client.request(method, url, **kwargs) for _ in range(count)]  # type: ignore[arg-type]


def refused(responses: list[httpx.Response]) -> list[httpx.Response]:
    return [r for r in responses if r.status_code == 429]


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("rl-default") / "data", env=ON)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        **ON,
        "SATCHEL_RATE_LIMIT_PER_SECOND": "5",
        "SATCHEL_RATE_LIMIT_RECORDS_PER_SECOND": "10",
        "SATCHEL_RATE_LIMIT_GLOBAL_PER_MINUTE": "100000",
        "SATCHEL_RATE_LIMIT_WAIT_SECONDS": "0",  # refusal itself, unshaped
    }
    server = start_server(tmp_path_factory.mktemp("rl-small") / "data", env=env)
    yield server
    stop_server(server)


def test_every_response_tells_its_limit(defaults: Server) -> None:
    with defaults.client() as http:
        store = http.post("/key-value-stores").json()["data"]
        base = f"/key-value-stores/{store['id']}"
        assert http.put(f"{base}/records/a", content=b"1").headers["x-ratelimit-limit"] == "100"
        assert http.get(f"{base}/records/a").headers["x-ratelimit-limit"] == "100"
        assert http.head(f"{base}/records/missing").headers["x-ratelimit-limit"] == "100"
        assert http.delete(f"{base}/records/a").headers["x-ratelimit-limit"] == "100"
        assert http.get(f"{base}/keys").headers["x-ratelimit-limit"] == "30"
        assert http.get(base).headers["x-ratelimit-limit"] == "30"
        assert http.get("/key-value-stores").headers["x-ratelimit-limit"] == "30"
        assert http.get("/no/such/endpoint").headers["x-ratelimit-limit"] == "30"
        assert http.get(f"{base}/records/bad~key").headers["x-ratelimit-limit"] == "100"
        assert http.options(f"{base}/records/a").headers["x-ratelimit-limit"] == "100"  # a preflight too
        assert http.options(base).headers["x-ratelimit-limit"] == "30"
    exposed = httpx.get(f"{defaults.api}/users/me").headers["access-control-expose-headers"]
    assert "X-RateLimit-Limit" in exposed
    assert "Retry-After" in exposed


def test_per_store_limit(small: Server) -> None:
    with small.client() as http:
        one = http.post("/key-value-stores").json()["data"]["id"]
        two = http.post("/key-value-stores").json()["data"]["id"]
        time.sleep(1.0)
        results = burst(http, "GET", f"/key-value-stores/{one}", 40)
        passed = [r for r in results if r.status_code == 200]
        assert 5 <= len(passed) <= 10
        assert len(refused(results)) == 40 - len(passed)
        error = refused(results)[0].json()["error"]
        assert error["type"] == "rate-limit-exceeded"
        assert "5 requests per second" in error["message"]
        # The next second's window takes requests again, and the refusal says so.
        assert {r.headers["retry-after"] for r in refused(results)} == {"1"}
        # Another store is another resource, with its own budget.
        assert http.get(f"/key-value-stores/{two}").status_code == 200
        time.sleep(1.1)
        assert http.get(f"/key-value-stores/{one}").status_code == 200


def test_record_endpoints_have_the_higher_tier(small: Server) -> None:
    with small.client() as http:
        store = http.post("/key-value-stores").json()["data"]["id"]
        time.sleep(1.0)
        results = burst(http, "PUT", f"/key-value-stores/{store}/records/k", 60, content=b"v")
        created = [r for r in results if r.status_code == 201]
        assert 10 <= len(created) <= 20
        assert len(refused(results)) == 60 - len(created)
        # Refused writes were not stored: the write count is exactly the acknowledged writes.
        time.sleep(1.1)
        stats = http.get(f"/key-value-stores/{store}").json()["data"]["stats"]
        assert stats["writeCount"] == len(created)


def test_item_pushes_and_single_requests_have_the_higher_tier(defaults: Server) -> None:
    """The reference ranks pushing items and a queue's request CRUD with a record's CRUD: a crawl makes them
    for every page, and at the per-resource limit a Crawlee crawl was held to a few pages a second."""
    with defaults.client() as http:
        dataset = f"/datasets/{http.post('/datasets').json()['data']['id']}"
        queue = f"/request-queues/{http.post('/request-queues').json()['data']['id']}"
        added = http.post(f"{queue}/requests", json={"url": "https://example.com/a", "uniqueKey": "a"})
        assert added.headers["x-ratelimit-limit"] == "100"
        request = f"{queue}/requests/{added.json()['data']['requestId']}"
        assert http.post(f"{dataset}/items", json=[{"a": 1}]).headers["x-ratelimit-limit"] == "100"
        assert http.get(request).headers["x-ratelimit-limit"] == "100"
        assert http.put(request, json=http.get(request).json()["data"]).headers["x-ratelimit-limit"] == "100"
        assert http.options(request).headers["x-ratelimit-limit"] == "100"
        assert http.delete(request).headers["x-ratelimit-limit"] == "100"
        # Their neighbours keep the per-resource limit: reading items, listing requests, the head, batches.
        assert http.get(f"{dataset}/items").headers["x-ratelimit-limit"] == "30"
        assert http.get(f"{queue}/requests").headers["x-ratelimit-limit"] == "30"
        assert http.get(f"{queue}/head").headers["x-ratelimit-limit"] == "30"
        assert http.post(f"{queue}/requests/batch", json=[]).headers["x-ratelimit-limit"] == "30"
        assert http.get(dataset).headers["x-ratelimit-limit"] == "30"


def test_item_pushes_are_counted_under_the_higher_tier(small: Server) -> None:
    with small.client() as http:
        dataset = http.post("/datasets").json()["data"]["id"]
        time.sleep(1.0)
        results = burst(http, "POST", f"/datasets/{dataset}/items", 60, json={"a": 1})
        pushed = [r for r in results if r.status_code == 201]
        assert 10 <= len(pushed) <= 20
        assert len(refused(results)) == 60 - len(pushed)
        assert "10 requests per second" in refused(results)[0].json()["error"]["message"]
        time.sleep(1.1)
        # Reading the items is not a push: it keeps the per-resource limit of 5.
        reads = burst(http, "GET", f"/datasets/{dataset}/items", 40)
        assert 5 <= len([r for r in reads if r.status_code == 200]) <= 10


def test_official_client_retries_through_429(small: Server) -> None:
    client = ApifyClient(small.token, api_url=small.base_url, api_public_url=small.base_url)
    store = client.key_value_stores().get_or_create(name="rl-client")
    kvs = client.key_value_store(store.id)
    for i in range(30):  # three times the per-second record budget
        kvs.set_record(f"k{i:02d}", {"i": i})
    keys = [item.key for item in kvs.list_keys().items]
    assert keys == [f"k{i:02d}" for i in range(30)]


def test_global_limit_per_user_and_per_ip(tmp_path: Path) -> None:
    env = {**ON, "SATCHEL_RATE_LIMIT_GLOBAL_PER_MINUTE": "12", "SATCHEL_RATE_LIMIT_PER_SECOND": "1000"}
    server = start_server(tmp_path / "data", env=env)
    try:
        with server.client() as http:
            stores = [http.post("/key-value-stores") for _ in range(15)]
            statuses = [r.status_code for r in stores]
            assert statuses.count(201) <= 12
            assert 429 in statuses
            limited = next(r for r in stores if r.status_code == 429)
            assert "12 requests per minute" in limited.json()["error"]["message"]
            # Until the caller's minute starts over, which began with its first request a moment ago.
            assert 50 <= int(limited.headers["retry-after"]) <= 60
        # Anonymous callers are counted by IP, apart from the user's budget... until they spend their own.
        anonymous = [httpx.get(f"{server.api}/key-value-stores/someid") for _ in range(15)]
        assert [r.status_code for r in anonymous].count(404) >= 1
        assert 429 in [r.status_code for r in anonymous]
        # Unknown tokens count against the IP too, so they cannot be used to probe without limit.
        bad = [
            httpx.get(f"{server.api}/users/me", headers={"authorization": "Bearer apify_api_wrong"})
            for _ in range(3)
        ]
        assert {r.status_code for r in bad} == {429}
    finally:
        stop_server(server)


def test_rate_limit_off(tmp_path: Path) -> None:
    env = {"SATCHEL_RATE_LIMIT_PER_SECOND": "1", "SATCHEL_RATE_LIMIT_RECORDS_PER_SECOND": "1"}
    server = start_server(tmp_path / "data", env=env, args=("--rate-limit", "off"))
    try:
        with server.client() as http:
            store = http.post("/key-value-stores").json()["data"]["id"]
            results = burst(http, "PUT", f"/key-value-stores/{store}/records/k", 20, content=b"v")
            assert {r.status_code for r in results} == {201}
    finally:
        stop_server(server)


# --- several server processes sharing their counters through Redis


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    if binary is None:
        # `make test` says so up front (tests/preflight.py); .ci/run installs it and fails without it.
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}", process
    process.send_signal(signal.SIGCONT)  # a test that froze it may have failed before thawing it
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: tuple[str, subprocess.Popen[bytes]]) -> str:
    return redis_server[0]


def test_two_servers_share_counters_through_redis(tmp_path: Path, redis_url: str) -> None:
    env = {
        **ON,
        "SATCHEL_RATE_LIMIT_STORAGE": redis_url,
        "SATCHEL_RATE_LIMIT_RECORDS_PER_SECOND": "10",
        "SATCHEL_RATE_LIMIT_WAIT_SECONDS": "0",
    }
    first = start_server(tmp_path / "data", env=env)
    second = start_server(tmp_path / "data", env=env)  # a second node over the same data
    try:
        with first.client() as a, second.client() as b:
            store = a.post("/key-value-stores").json()["data"]["id"]
            url = f"/key-value-stores/{store}/records/k"
            a.put(url, content=b"v")
            time.sleep(1.0)
            results = []
            for _ in range(15):  # alternate nodes: together they still get one budget of 10/s
                results += [a.get(url), b.get(url)]
            ok = [r for r in results if r.status_code == 200]
            assert 10 <= len(ok) <= 20
            assert len(refused(results)) == 30 - len(ok)
    finally:
        stop_server(first)
        stop_server(second)


def test_counters_that_do_not_answer_let_requests_through(tmp_path: Path) -> None:
    """Redis down (nothing listens on its port): the API still answers, uncounted, and says so in its log."""
    env = {**ON, "SATCHEL_RATE_LIMIT_STORAGE": f"redis://127.0.0.1:{free_port()}"}
    server = start_server(tmp_path / "data", env={**env, "SATCHEL_LOG_LEVEL": "warning"})
    try:
        with server.client() as http:
            store = http.post("/key-value-stores").json()["data"]["id"]
            assert http.put(f"/key-value-stores/{store}/records/k", content=b"v").status_code == 201
            assert http.get(f"/key-value-stores/{store}/records/k").content == b"v"
    finally:
        stop_server(server)
    log = "".join(p.read_text() for p in tmp_path.glob("server-*.log"))
    assert "rate-limit counters do not answer" in log


def test_counters_that_stall_let_requests_through_in_time(
    tmp_path: Path, redis_server: tuple[str, subprocess.Popen[bytes]]
) -> None:
    """Redis frozen (connected, never answering, as when the network drops its packets): requests go through
    uncounted within about the counters' timeout, not once Redis is back (a GET waited 50 s and more)."""
    url, redis = redis_server
    server = start_server(tmp_path / "data", env={**ON, "SATCHEL_RATE_LIMIT_STORAGE": url})
    try:
        with server.client() as http:
            store = http.post("/key-value-stores").json()["data"]["id"]
            assert http.put(f"/key-value-stores/{store}/records/k", content=b"v").status_code == 201
            redis.send_signal(signal.SIGSTOP)
            try:
                began = time.monotonic()
                statuses = [
                    http.get(f"/key-value-stores/{store}/records/k", timeout=10).status_code for _ in range(5)
                ]
                took = time.monotonic() - began
            finally:
                redis.send_signal(signal.SIGCONT)
            assert statuses == [200] * 5
            # The first waits out the timeout (1 s); the others do not ask the stalled counters again.
            assert took < 4.0
    finally:
        stop_server(server)


# --- shaping: over a per-store limit, a request waits for a slot before it is refused


@pytest.fixture(scope="module")
def shaped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {**ON, "SATCHEL_RATE_LIMIT_PER_SECOND": "5", "SATCHEL_RATE_LIMIT_RECORDS_PER_SECOND": "10"}
    server = start_server(tmp_path_factory.mktemp("rl-shaped") / "data", env=env)
    yield server
    stop_server(server)


def test_a_steady_client_over_the_limit_is_slowed_not_refused(shaped: Server) -> None:
    with shaped.client() as http:
        store = http.post("/key-value-stores").json()["data"]["id"]
        began = time.monotonic()
        results = burst(http, "PUT", f"/key-value-stores/{store}/records/k", 35, content=b"v")
        took = time.monotonic() - began
        assert [r.status_code for r in results] == [201] * 35
        # 35 writes at 10 a second cannot all fit in the first two windows: the server held some back.
        assert took > 1.0
        with shaped.client() as other:
            assert other.get(f"/key-value-stores/{store}/keys").status_code == 200


def test_a_steady_client_over_the_limit_is_slowed_through_redis_too(tmp_path: Path, redis_url: str) -> None:
    """Shared counters shape as memory ones do: Redis tells expiries in whole seconds, which must not make
    every wait look too long to take (all 25 over the limit were refused at once, none held back)."""
    env = {**ON, "SATCHEL_RATE_LIMIT_STORAGE": redis_url, "SATCHEL_RATE_LIMIT_RECORDS_PER_SECOND": "10"}
    server = start_server(tmp_path / "data", env=env)
    try:
        with server.client() as http:
            store = http.post("/key-value-stores").json()["data"]["id"]
            results = burst(http, "PUT", f"/key-value-stores/{store}/records/k", 35, content=b"v")
            assert [r.status_code for r in results] == [201] * 35
    finally:
        stop_server(server)


def test_a_flood_past_the_waiting_room_is_refused(shaped: Server) -> None:
    with shaped.client() as http:
        store = http.post("/key-value-stores").json()["data"]["id"]
    url = f"/key-value-stores/{store}/records/k"

    def put(_: int) -> int:
        with shaped.client() as client:
            return client.put(url, content=b"v").status_code

    with ThreadPoolExecutor(60) as pool:
        statuses = list(pool.map(put, range(60)))
    # At most a window's worth pass at once and a second's worth waits; the rest are refused.
    assert statuses.count(429) >= 20
    assert set(statuses) <= {201, 429}


@pytest.mark.parametrize("threads", [8, 32])
def test_parallel_official_clients_finish_under_the_default_limits(defaults: Server, threads: int) -> None:
    """Threads of the official Python client writing 1,200 records to one store: none lost, no error."""
    client = ApifyClient(defaults.token, api_url=defaults.base_url, api_public_url=defaults.base_url)
    store = client.key_value_stores().get_or_create(name=f"rl-parallel-{threads}")
    kvs = client.key_value_store(store.id)

    def write(i: int) -> None:
        kvs.set_record(f"k{i:04d}", {"i": i})

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, range(1200)))
    keys = [item.key for item in kvs.iterate_keys()]
    assert keys == [f"k{i:04d}" for i in range(1200)]


def test_the_javascript_client_with_32_requests_in_flight_finishes(defaults: Server) -> None:
    node = shutil.which("node")
    modules = Path(__file__).parent / "js" / "node_modules" / "apify-client"
    if node is None or not modules.exists():
        pytest.skip("node and tests/js/node_modules are needed (the JavaScript client suite installs them)")
    env = {**os.environ, "SATCHEL_URL": defaults.base_url, "SATCHEL_TOKEN": defaults.token}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    done = subprocess.run(
        [node, str(Path(__file__).parent / "js" / "parallel.mjs")],
        env={**env, "COUNT": "1200", "CONCURRENCY": "32"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    store = json.loads(done.stdout.strip().splitlines()[-1])["store"]
    client = ApifyClient(defaults.token, api_url=defaults.base_url, api_public_url=defaults.base_url)
    keys = [item.key for item in client.key_value_store(store).iterate_keys()]
    assert keys == [f"k{i:04d}" for i in range(1200)]


def test_every_spelling_of_a_store_shares_one_budget(small: Server) -> None:
    """Its id, `username~name`, `~name` and percent-encoded forms are one resource to the limits."""
    with small.client() as http:
        me = http.get("/users/me").json()["data"]["username"]
        store = http.post("/key-value-stores", params={"name": "spelled"}).json()["data"]["id"]
        spellings = [store, f"{me}~spelled", "~spelled", f"{me}%7Espelled", "%7Espelled"]
        time.sleep(1.0)
        results = [http.get(f"/key-value-stores/{ref}") for _ in range(6) for ref in spellings]
        passed = [r for r in results if r.status_code == 200]
        # One budget of 5 a second (10 across a window boundary), not five of them.
        assert len(passed) <= 10
        assert len(refused(results)) == 30 - len(passed)


def test_nobody_spends_an_owners_budget(small: Server) -> None:
    """Requests to a store by anyone but its owner (refused, or a reader's) count against their own budget
    for it: a flood of them leaves the owner's requests through."""
    with small.client() as http, small.anonymous() as nobody:
        me = http.get("/users/me").json()["data"]["username"]
        store = http.post("/key-value-stores", params={"name": "guarded"}).json()["data"]["id"]
        time.sleep(1.0)
        for ref in (f"{me}~guarded", store):  # one budget of the caller's for both spellings
            flood = [nobody.get(f"/key-value-stores/{ref}") for _ in range(20)]
            statuses = {r.status_code for r in flood}
            assert 429 in statuses  # its own budget, spent
            assert statuses <= {404, 429}
            assert http.get(f"/key-value-stores/{ref}").status_code == 200
        # Public, the store is read by others on their budgets, and still not on the owner's.
        http.put(f"/key-value-stores/{store}", json={"generalAccess": "ANYONE_WITH_ID_CAN_READ"})
        time.sleep(1.0)
        flood = [nobody.get(f"/key-value-stores/{store}") for _ in range(20)]
        assert {r.status_code for r in flood} == {200, 429}
        assert http.get(f"/key-value-stores/{store}").status_code == 200
