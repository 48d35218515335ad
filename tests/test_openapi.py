"""The published OpenAPI document: built from the route table, it names every route and method the router
serves (and no other) with each path parameter declared once, and the server's real answers conform to it
under schemathesis's fuzzing."""

from __future__ import annotations

import re
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

from satchel.api.routing import ROUTES, resolve
from satchel.api.spec.common import PATH_PARAMS, SCHEMAS
from satchel.api.spec.document import body, build_document
from tests.conftest import Server, start_server, stop_server

# Per operation; with 13 operations this keeps the whole run well under a minute on a busy machine.
MAX_EXAMPLES = 25
# A value for every path parameter name, to make a concrete path of each template.
EXAMPLES: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()
FUZZ_STORE: dict[str, str] = {}
OPERATIONS = ("get", "head", "put", "post", "delete", "patch", "options")


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


def test_served_document_is_the_one_built_from_the_table(server: Server) -> None:
    served = httpx.get(server.api + "/openapi.json").content
    assert served == body()
    assert orjson.loads(served) == orjson.loads(orjson.dumps(build_document(ROUTES)))


def test_every_route_and_method_is_documented_and_nothing_else(server: Server) -> None:
    paths: dict[str, dict[str, Any]] = httpx.get(server.api + "/openapi.json").json()["paths"]
    assert list(paths) == [route.template for route in ROUTES]
    for route in ROUTES:
        documented = {name.upper() for name in paths[route.template] if name in OPERATIONS}
        assert documented == set(route.methods), route.template
        assert set(paths[route.template]) <= {"parameters", *OPERATIONS}, route.template


def test_every_path_parameter_is_declared_once_under_its_name(server: Server) -> None:
    paths: dict[str, dict[str, Any]] = httpx.get(server.api + "/openapi.json").json()["paths"]
    for name, param in PATH_PARAMS.items():
        assert (param["name"], param["in"], param["required"]) == (name, "path", True)
        assert "example" in param, name  # schemathesis and readers need one that finds something
    for route in ROUTES:
        named = re.findall(r"\{([^}]*)\}", route.template)
        assert list(route.params) == named, route.template
        assert set(named) <= set(PATH_PARAMS), route.template
        declared = [p["name"] for p in paths[route.template].get("parameters", []) if p["in"] == "path"]
        assert declared == named, route.template
        for method, endpoint in route.methods.items():
            # Path parameters belong to the path item, never repeated (perhaps differently) per operation.
            assert all(p["in"] != "path" for p in endpoint.spec.get("parameters", [])), (route, method)


def test_operation_ids_are_unique_and_every_operation_complete() -> None:
    ids = Counter(endpoint.spec["operationId"] for route in ROUTES for endpoint in route.methods.values())
    assert [name for name, n in ids.items() if n > 1] == []
    for route in ROUTES:
        for method, endpoint in route.methods.items():
            assert endpoint.spec.get("summary"), (route.template, method)
            assert any(status.startswith("2") for status in endpoint.spec["responses"]), (route, method)


def test_every_schema_reference_resolves_and_every_schema_is_used() -> None:
    text = orjson.dumps(build_document(ROUTES)["paths"]).decode()
    used = set(re.findall(r'"#/components/schemas/([^"]+)"', text))
    # Schemas refer to schemas too (a store's `stats`): follow references to a fixed point.
    while True:
        more = {
            found
            for name in used
            for found in re.findall(r'"#/components/schemas/([^"]+)"', orjson.dumps(SCHEMAS[name]).decode())
        }
        if more <= used:
            break
        used |= more
    assert used <= set(SCHEMAS)
    assert set(SCHEMAS) - used == set()


def test_every_template_resolves_to_its_route() -> None:
    """Made concrete with a sample per parameter, each template reaches its own route (so `/v2/users/me`
    reaches the caller's route and not `/v2/users/{userId}`), with each parameter under its name."""
    for route in ROUTES:
        concrete = route.template
        for name in route.params:
            concrete = concrete.replace("{" + name + "}", _sample(name))
        found, params = resolve(concrete.encode())
        assert found is route, route.template
        assert params == {name: _sample(name) for name in route.params}, route.template


def _sample(name: str) -> str:
    """A value for a path parameter that no literal segment of the table spells."""
    return f"sample-{name}"


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


# The document as the package builds it; test_served_document_is_the_one_built_from_the_table shows the
# server publishes exactly this. (Loading it from the server at run time needs schemathesis's lazy fixture
# loader, which fails on pytest 9: `Function` has no `_nodeid`.)
fuzz = schemathesis.openapi.from_dict(orjson.loads(body()))
fuzz.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)


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
