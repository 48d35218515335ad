"""One log line per request, with a request id echoed in X-Request-Id (a proxy's, when it is sane), in text
or JSON, written by a server configured from a TOML file."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from satchel.logs import JsonFormatter, TextFormatter
from tests.conftest import TOKEN, Server, start_server, stop_server
from tests.test_operations import app_with

AUTH = {"authorization": f"Bearer {TOKEN}"}
RECORD = "/v2/key-value-stores/{storeId}/records/{recordKey}"


def request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "satchel.request"]


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = record.__dict__["fields"]
    return fields


def test_each_request_is_logged_once_with_its_id(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with (
        app_with(tmp_path / "data", request_log=True) as http,
        caplog.at_level(logging.INFO, logger="satchel.request"),
    ):
        store = http.post("/v2/key-value-stores", headers=AUTH).json()["data"]["id"]
        me = http.get("/v2/users/me", headers=AUTH).json()["data"]["id"]
        caplog.clear()
        put = http.put(f"/v2/key-value-stores/{store}/records/k?token={TOKEN}", content=b"12345")
    assert put.status_code == 201
    [line] = request_lines(caplog)
    fields: dict[str, Any] = fields_of(line)
    assert fields["method"] == "PUT"
    assert fields["route"] == RECORD
    assert fields["path"] == f"/v2/key-value-stores/{store}/records/k"  # without the query and its token
    assert fields["status"] == 201
    assert fields["bytes_in"] == 5
    assert fields["bytes_out"] == len(put.content)
    assert fields["duration_ms"] > 0
    assert fields["user_id"] == me
    assert re.fullmatch(r"[0-9a-f]{16,}", fields["request_id"])
    assert put.headers["x-request-id"] == fields["request_id"]
    assert TOKEN not in JsonFormatter().format(line)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-0123456789abcdef", True),
        ("b3e1a6f0-7c52-4c11-9a2e-0d9e3f1f2a4b", True),
        ("x" * 128, True),
        ("x" * 129, False),  # too long
        ("two words", False),
        ('quote"d', False),
        ("", False),
    ],
)
def test_a_proxys_request_id_is_kept_when_sane(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, sent: str, kept: bool
) -> None:
    with (
        app_with(tmp_path / "data", request_log=True) as http,
        caplog.at_level(logging.INFO, logger="satchel.request"),
    ):
        answered = http.get("/health", headers={"x-request-id": sent})
    [line] = request_lines(caplog)
    echoed = answered.headers["x-request-id"]
    assert fields_of(line)["request_id"] == echoed
    if kept:
        assert echoed == sent
    else:
        assert re.fullmatch(r"[0-9a-f]{16,}", echoed)


def test_unknown_paths_and_anonymous_callers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with (
        app_with(tmp_path / "data", request_log=True) as http,
        caplog.at_level(logging.INFO, logger="satchel.request"),
    ):
        http.get("/v2/no/such/thing")
        http.get("/console/")
    first, second = (fields_of(line) for line in request_lines(caplog))
    assert (first["route"], first["status"], first["user_id"]) == ("unmatched", 404, None)
    assert first["path"] == "/v2/no/such/thing"
    assert second["route"] == "/console"


@pytest.mark.parametrize("metrics", [True, False])
def test_request_log_off(tmp_path: Path, caplog: pytest.LogCaptureFixture, metrics: bool) -> None:
    with (
        app_with(tmp_path / "data", request_log=False, metrics=metrics) as http,
        caplog.at_level(logging.INFO, logger="satchel.request"),
    ):
        store = http.post("/v2/key-value-stores", headers=AUTH).json()["data"]["id"]
        answers = [
            http.get("/health"),
            http.get(f"/v2/key-value-stores/{store}", headers=AUTH),
            http.get(f"/v2/key-value-stores/{store}/records/missing", headers=AUTH),
        ]
    assert request_lines(caplog) == []
    # The id is still given, for the client's own logs, with the metrics on or off.
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert len(set(ids)) == len(ids)


def test_formats() -> None:
    fields = {"route": "/health", "user_id": None}
    record = logging.makeLogRecord(
        {"name": "satchel.request", "levelname": "INFO", "msg": "request", "fields": fields}
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "info"
    assert entry["logger"] == "satchel.request"
    assert entry["message"] == "request"
    assert entry["route"] == "/health"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    text = TextFormatter().format(record)
    assert text.endswith("INFO satchel.request: request route=/health")


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """A server whose log format comes from a TOML file given with --config, and whose level comes from a
    flag (over the harness's SATCHEL_LOG_LEVEL=warning, which is over the file)."""
    root = tmp_path_factory.mktemp("request-log")
    config = root / "satchel.toml"
    config.write_text('log_format = "json"\nlog_level = "error"\nrequest_log = true\n')
    srv = start_server(root / "data", args=("--config", str(config), "--log-level", "info"))
    port = httpx.URL(srv.base_url).port
    yield srv, root / f"server-{port}.log"
    stop_server(srv)


def test_a_server_logs_json_lines(configured: tuple[Server, Path]) -> None:
    srv, log_file = configured
    answered = httpx.get(f"{srv.api}/users/me", headers={**AUTH, "x-request-id": "from-the-proxy-1"})
    assert answered.headers["x-request-id"] == "from-the-proxy-1"
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:  # written by the worker's log thread
        lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
        found = [line for line in lines if line.get("request_id") == "from-the-proxy-1"]
        time.sleep(0.05)
    [entry] = found
    assert entry["route"] == "/v2/users/me"
    assert entry["status"] == 200
    assert entry["user_id"]
    assert entry["level"] == "info"
