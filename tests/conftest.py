"""A real Satchel server on loopback for the suite, started as a user would (`satchel serve`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from tests.harness.backends import COMBOS, Backends
from tests.harness.browser import chromium
from tests.harness.hostile import Engine, Hostile, kv_hostile
from tests.harness.hostile_storages import storages_hostile
from tests.harness.inprocess import BASE_URL as IN_PROCESS_URL
from tests.harness.inprocess import InProcessApp
from tests.harness.rigs import ENGINES, Rig
from tests.harness.server import TOKEN, Server, free_port, start_server, stop_server
from tests.harness.summaries import SUMMARIES

try:
    from _pytest.nodeid import NodeId
except ImportError:  # before pytest 9 a test's id was made from its name, which schemathesis makes unique
    NodeId = None  # type: ignore[assignment,misc]

# What test modules take from here (the server helpers live in tests/harness/server.py).
__all__ = [
    "TOKEN",
    "Server",
    "apps_on",
    "every_engine",
    "free_port",
    "servers_on",
    "start_server",
    "stop_server",
]


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    """PostgreSQL and SeaweedFS for the scale-out engines, each started when a test first needs it."""
    found = Backends(tmp_path_factory.mktemp("backends"))
    yield found
    found.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for a module's browser tests. Not one for the whole run: Playwright's sync API keeps an event
    loop running in this thread while it is open, and the tests that call asyncio.run() would then fail."""
    with chromium() as found:
        yield found


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("satchel")
    srv = start_server(root / "data")
    yield srv
    stop_server(srv)


def servers_on(
    combo: str, backends: Backends, factory: pytest.TempPathFactory, **kwargs: Any
) -> Iterator[Server]:
    """A server on one engine combination with fresh data, for a module's `server` fixture to yield from."""
    where = backends.locations(combo)
    env = {
        "SATCHEL_DATABASE": where["database"],
        "SATCHEL_BLOB_STORE": where["blob_store"],
        **backends.env(combo),
        **kwargs.pop("env", {}),
    }
    srv = start_server(factory.mktemp(combo.replace("+", "-")) / "data", env=env, **kwargs)
    yield srv
    stop_server(srv)


def apps_on(combo: str, backends: Backends, factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app on one engine combination, in this process (the fast API tier)."""
    data_dir = factory.mktemp(combo.replace("+", "-")) / "data"
    settings = backends.settings(
        combo, data_dir, token=TOKEN, rate_limit=False, log_level="warning", public_url=IN_PROCESS_URL
    )
    app = InProcessApp(settings)
    try:
        app.bootstrap(TOKEN)
        yield Server(IN_PROCESS_URL, TOKEN, data_dir, app=app)
    finally:
        app.close()


def every_engine(*, in_process: bool = False) -> Any:
    """A module-scoped `server` fixture that runs the module once on each engine combination: servers on
    loopback, or (`in_process`) the app in the test process.

    Use it as `server = every_engine()` at a test module's top level.
    """

    @pytest.fixture(scope="module", params=COMBOS, name="server")
    def server_on_each(
        request: pytest.FixtureRequest, backends: Backends, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Server]:
        start = apps_on if in_process else servers_on
        yield from start(request.param, backends, tmp_path_factory)

    return server_on_each


# The engine combinations the hostile tables run on: the embedded one, and PostgreSQL with S3, the stricter
# database (no NUL in text, int64 bounds, ...) with bodies out of process.
HOSTILE_COMBOS = ("sqlite+files", "postgres+s3")


@pytest.fixture(scope="module", params=HOSTILE_COMBOS)
def engine(request: pytest.FixtureRequest, backends: Backends) -> Engine:
    """The engine a module's hostile tables run on, once on each of HOSTILE_COMBOS."""
    combo: str = request.param
    return Engine(combo, None if combo == "sqlite+files" else backends)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> Iterator[Hostile]:
    """A seeded server for a module's hostile-input table (tests/harness/hostile.py)."""
    with kv_hostile(tmp_path_factory.mktemp("hostile"), engine) as state:
        yield state


@pytest.fixture(scope="module")
def storages(tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> Iterator[Hostile]:
    """A seeded server for a module's hostile-input table on datasets, queues and runs."""
    with storages_hostile(tmp_path_factory.mktemp("hostile-storages"), engine) as state:
        yield state


@pytest.fixture(params=sorted(ENGINES))
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Rig:
    """A rig on each engine, with fresh data, for the crash and concurrency runs to start servers from."""
    return ENGINES[request.param](tmp_path)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def store(http: httpx.Client) -> dict[str, object]:
    """A fresh unnamed store for one test."""
    response = http.post("/key-value-stores")
    assert response.status_code == 201
    return response.json()["data"]  # type: ignore[no-any-return]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test its own id. schemathesis names each generated test after its operation (`test_fuzz[GET
    /v2/datasets]`), but on pytest 9 their ids all read `test_fuzz`, and pytest-xdist (`make test` runs the
    suite in two processes) hands tests out by id: all of them but one would silently never run."""
    seen = Counter(item.nodeid for item in items)
    for item in items:
        if seen[item.nodeid] > 1 and item.parent is not None and NodeId is not None:
            item._id = NodeId.parse(f"{item.parent.nodeid}::{item.name}")  # pytest has no public setter


# What the xdist worker processes printed into their summaries, gathered in the process that reports.
FROM_WORKERS: dict[str, list[str]] = {}


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In an xdist worker: its summaries' lines, handed to the controlling process with the results."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["summaries"] = {title: produce() for title, produce in SUMMARIES.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """An xdist worker finished: keep the lines of its summaries for the report at the end."""
    for title, lines in getattr(node, "workeroutput", {}).get("summaries", {}).items():
        FROM_WORKERS.setdefault(title, []).extend(lines)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The figures the run produced (tests/harness/summaries.py), after the test results; and the seed of
    the shuffled order (pytest-randomly: modules, then the tests in each), left out of -q's header."""
    seed = config.getoption("randomly_seed", default=None)
    if seed is not None and config.pluginmanager.has_plugin("randomly"):
        terminalreporter.write_line(
            f"random order: the same again with --randomly-seed={seed}; file order with -p no:randomly"
        )
    # Made in this process, or (with -n) in the workers: a module's figures come from the one that ran it.
    for title in {**SUMMARIES, **FROM_WORKERS}:
        produce = SUMMARIES.get(title)
        lines = [*(produce() if produce else ()), *FROM_WORKERS.get(title, ())]
        if lines:
            terminalreporter.write_sep("-", title)
            for line in lines:
                terminalreporter.write_line(line)
