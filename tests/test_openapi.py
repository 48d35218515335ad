"""The published OpenAPI document: it names every route the router serves (and no other), and the server's
real answers conform to it under schemathesis's fuzzing."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from satchel.api import openapi
from satchel.api.routing import ROUTES, resolve
from tests.conftest import Server, start_server, stop_server

# Per operation; with 13 operations this keeps the whole run well under a minute on a busy machine.
MAX_EXAMPLES = 25
SAMPLES = {
    "{storeId}": "someStoreId",
    "{recordKey}": "some-key",
    "{username}": "someone",
    "{userId}": "someone",
}
EXAMPLES: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()
FUZZ_STORE: dict[str, str] = {}


def test_document_is_served_without_a_token(server: Server) -> None:
    response = httpx.get(server.api + "/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert set(document["components"]["schemas"]) >= {
        "Error",
        "KeyValueStore",
        "KeyPage",
        "KeyValueStoreList",
    }


def test_every_route_is_documented_and_nothing_else(server: Server) -> None:
    document = httpx.get(server.api + "/openapi.json").json()
    paths: dict[str, dict[str, Any]] = document["paths"]
    assert set(paths) == set(ROUTES)
    for template, methods in ROUTES.items():
        documented = {name.upper() for name in paths[template] if name != "parameters"}
        assert documented == set(methods), template
        # The template names the route resolve() really serves.
        concrete = template
        for placeholder, sample in SAMPLES.items():
            concrete = concrete.replace(placeholder, sample)
        assert resolve(concrete.encode())[0] is methods, template


def test_every_error_response_is_the_envelope(server: Server) -> None:
    document = httpx.get(server.api + "/openapi.json").json()
    for template, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (template, method, status)


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("fuzz") / "data")
    # Something to find: the store, record and user the document's examples name.
    with server.client() as http:
        FUZZ_STORE["id"] = http.post("/key-value-stores", params={"name": "my-store"}).json()["data"]["id"]
        for key in ("INPUT", "OUTPUT", "a"):
            http.put(
                f"/key-value-stores/~my-store/records/{key}", content=b"{}", headers={"content-type": "x/y"}
            )
    done = subprocess.run(
        [sys.executable, "-m", "satchel", "users", "create", "someone", "--data-dir", str(server.data_dir)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    yield server
    stop_server(server)


# The document as the package holds it; test_served_document_is_the_package_one shows the server publishes
# exactly this. (Loading it from the server at run time needs schemathesis's lazy fixture loader, which fails
# on pytest 9: `Function` has no `_nodeid`.)
fuzz = schemathesis.openapi.from_dict(orjson.loads(openapi.BODY))
fuzz.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)


def test_served_document_is_the_package_one(server: Server) -> None:
    assert httpx.get(server.api + "/openapi.json").content == openapi.BODY


@fuzz.parametrize()
def test_fuzz(case: Any, fuzzed_server: Server) -> None:
    EXAMPLES[case.operation.label] += 1
    # Random store ids find nothing; every other case goes to the real store instead, by id (a fuzzed rename
    # keeps that working), but never deletes it.
    params = case.path_parameters or {}
    if ("storeId" in params and EXAMPLES[case.operation.label] % 2 and case.method != "DELETE") or (
        case.method == "DELETE" and "recordKey" in params and EXAMPLES[case.operation.label] % 2
    ):
        params["storeId"] = FUZZ_STORE["id"]
    response = case.call_and_validate(
        base_url=fuzzed_server.base_url,
        headers={"Authorization": f"Bearer {fuzzed_server.token}"},
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
        timeout=30,
    )
    STATUSES[response.status_code] += 1


def test_fuzz_summary() -> None:
    print(f"\nschemathesis examples: {sum(EXAMPLES.values())} over {len(EXAMPLES)} operations")
    print("  statuses: " + ", ".join(f"{status}: {n}" for status, n in sorted(STATUSES.items())))
    for label, count in sorted(EXAMPLES.items()):
        print(f"  {label}: {count}")
