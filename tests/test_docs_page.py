"""The API documentation page at /docs: Swagger UI over the OpenAPI document, every file it needs served by
Satchel itself, rendered in a real browser (Debian's Chromium through Playwright) without one request leaving
the server; and the document it shows describes every parameter and field."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import httpx
import orjson
import pytest
from playwright.sync_api import ConsoleMessage, Request

from satchel.api.routing import ROUTES
from satchel.api.spec.document import build_document
from tests.conftest import Server, start_server, stop_server
from tests.harness.browser import chromium, needs_chromium

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("docs-page") / "data")
    yield server
    stop_server(server)


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_page_references_only_its_own_assets(server: Server) -> None:
    page = httpx.get(server.base_url + "/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert re.search(r"https?://", page.text) is None
    assets = _assets(page.text)
    assert len(assets) == 4
    assert all(asset.startswith("/docs/assets/") for asset in assets), assets
    assert httpx.get(server.base_url + "/docs/").text == page.text


def test_assets_load_with_their_content_types(server: Server) -> None:
    for asset in _assets(httpx.get(server.base_url + "/docs").text):
        response = httpx.get(server.base_url + asset)
        assert response.status_code == 200, asset
        suffix = asset[asset.rindex(".") :]
        assert response.headers["content-type"].startswith(CONTENT_TYPES[suffix]), asset
        assert int(response.headers["content-length"]) == len(response.content) > 0
        if suffix == ".js" and "swagger-ui" not in asset:  # Satchel's own script: the document on this server
            assert "/v2/openapi.json" in response.text
            assert "validatorUrl: null" in response.text
            assert re.search(r"https?://", response.text) is None


def test_other_paths_under_docs_are_refused(server: Server) -> None:
    for path in ("/docs/assets/swagger-editor.js", "/docs/assets/../swagger_ui/core.py", "/docs/other"):
        status, _, body = server.raw_request("GET", path)  # the path as written, dots and all
        assert status == 404, path
        assert orjson.loads(body)["error"]["type"] == "page-not-found"
    posted = httpx.post(server.base_url + "/docs")
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET, HEAD"


def _fields(schema: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every field of a schema, at any depth, with where it is."""
    if not isinstance(schema, dict):
        return
    for name, inner in (schema.get("properties") or {}).items():
        yield f"{where}.{name}", inner
        yield from _fields(inner, f"{where}.{name}")
    for key in ("items", "additionalProperties"):
        yield from _fields(schema.get(key), where)
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key) or []:
            yield from _fields(part, where)


def test_every_parameter_and_field_is_described() -> None:
    document = build_document(ROUTES)
    undescribed = [
        f"{method} {path} {param['name']}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
        for param in operation.get("parameters", []) + item.get("parameters", [])
        if not param.get("description")
    ]
    assert undescribed == []
    fields = [
        (where, field)
        for name, schema in document["components"]["schemas"].items()
        for where, field in _fields(schema, name)
    ]
    assert len(fields) > 200
    assert [where for where, field in fields if not field.get("description")] == []
    # A field whose meaning differs in one schema says so there, rather than taking the common wording.
    schemas = document["components"]["schemas"]
    assert schemas["Charge"]["properties"]["count"]["description"].startswith("How many events")
    assert schemas["KeyPage"]["properties"]["count"]["description"] == "How many entries this page holds"


@needs_chromium
def test_a_browser_renders_the_operations_from_this_server_alone(server: Server) -> None:
    requested: list[str] = []
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        page.on("request", lambda request: _note(request, requested))
        page.on("console", lambda message: _problem(message, problems))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(server.base_url + "/docs")
        # The operations come folded in groups, one per kind of resource, which open on a click.
        group = page.get_by_role("heading", name="Key-value stores")
        group.wait_for(timeout=30_000)
        assert page.get_by_role("heading", name="Request queues").count() == 1
        assert page.get_by_text("Store a record (the same as PUT)").count() == 0
        group.click()
        operation = page.locator("#operations-Key-value_stores-getRecord")
        operation.get_by_text("A record's body, decoded unless").wait_for(timeout=30_000)
        assert page.get_by_text("Store a record (the same as PUT)").count() >= 1
        # Opening an operation shows its parameters with their descriptions.
        operation.locator(".opblock-summary").first.click()
        page.get_by_text("The record's key").first.wait_for(timeout=10_000)
    assert problems == []
    origin = urlparse(server.base_url).netloc
    assert any(url.endswith("/v2/openapi.json") for url in requested)
    outside = [url for url in requested if urlparse(url).scheme != "data" and urlparse(url).netloc != origin]
    assert outside == []


def _note(request: Request, requested: list[str]) -> None:
    requested.append(request.url)


def _problem(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(message.text)
