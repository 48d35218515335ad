"""A dataset's item schema (`fields` in its schema, JSON Schema draft-07): pushes checked against it, refused
whole with `schema-validation-error` and AJV-shaped details, on every engine in-process."""

from __future__ import annotations

import gzip
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest

from satchel.errors import InvalidRequest
from satchel.service.item_schema import MAX_ITEMS_LISTED, check_items, validator_for
from tests.conftest import Server, apps_on, every_engine
from tests.harness.backends import Backends
from tests.harness.envelope import assert_error, data_of, unique

server = every_engine(in_process=True)

PRODUCT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "price": {"type": "number", "minimum": 0},
        "state": {"enum": ["new", "used"]},
        "code": {"type": "string", "pattern": "^[A-Z]+$"},
        "tags": {"type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"}}}},
    },
    "required": ["name", "price"],
}


def with_fields(http: httpx.Client, fields: Any, **extra: Any) -> str:
    schema = {"actorSpecification": 1, "fields": fields, "views": {}, **extra}
    made = data_of(http.post("/datasets", params={"name": unique("schema")}, json={"schema": schema}), 201)
    return str(made["id"])


def push(http: httpx.Client, dataset_id: str, items: Any) -> httpx.Response:
    return http.post(f"/datasets/{dataset_id}/items", json=items)


def stored(http: httpx.Client, dataset_id: str) -> list[Any]:
    return http.get(f"/datasets/{dataset_id}/items").json()  # type: ignore[no-any-return]


def refused(response: httpx.Response) -> list[dict[str, Any]]:
    """The invalid items of a push refused for its schema."""
    error = assert_error(response, 400, "schema-validation-error")
    assert set(error) == {"type", "message", "data"}, error
    assert set(error["data"]) == {"invalidItems"}
    return error["data"]["invalidItems"]  # type: ignore[no-any-return]


def test_items_that_match_are_stored_and_a_push_with_one_that_does_not_is_refused_whole(
    http: httpx.Client,
) -> None:
    ds = with_fields(http, PRODUCT)
    assert push(http, ds, {"name": "pen", "price": 2}).status_code == 201
    bad = [{"name": "cup", "price": 1}, {"name": "ink"}, {"name": 7, "price": 3}]
    assert refused(push(http, ds, bad)) == [
        {
            "itemPosition": 1,
            "validationErrors": [
                {
                    "instancePath": "",
                    "schemaPath": "#/required",
                    "keyword": "required",
                    "params": {"missingProperty": "price"},
                    "message": "must have required property 'price'",
                }
            ],
        },
        {
            "itemPosition": 2,
            "validationErrors": [
                {
                    "instancePath": "/name",
                    "schemaPath": "#/properties/name/type",
                    "keyword": "type",
                    "params": {"type": "string"},
                    "message": "must be string",
                }
            ],
        },
    ]
    # Nothing of the refused push was kept, not even its valid first item; counts are unchanged.
    assert stored(http, ds) == [{"name": "pen", "price": 2}]
    assert data_of(http.get(f"/datasets/{ds}"))["itemCount"] == 1
    assert push(http, ds, bad[:1]).status_code == 201
    assert stored(http, ds) == [{"name": "pen", "price": 2}, {"name": "cup", "price": 1}]


@pytest.mark.parametrize(
    ("item", "errors"),
    [
        (
            {"name": "a", "price": -1},
            [
                (
                    "/price",
                    "#/properties/price/minimum",
                    "minimum",
                    {"comparison": ">=", "limit": 0},
                    "must be >= 0",
                )
            ],
        ),
        (
            {"name": "much too long", "price": 1},
            [
                (
                    "/name",
                    "#/properties/name/maxLength",
                    "maxLength",
                    {"limit": 8},
                    "must NOT have more than 8 characters",
                )
            ],
        ),
        (
            {"name": "a", "price": 1, "state": "broken"},
            [
                (
                    "/state",
                    "#/properties/state/enum",
                    "enum",
                    {"allowedValues": ["new", "used"]},
                    "must be equal to one of the allowed values",
                )
            ],
        ),
        (
            {"name": "a", "price": 1, "code": "abc"},
            [
                (
                    "/code",
                    "#/properties/code/pattern",
                    "pattern",
                    {"pattern": "^[A-Z]+$"},
                    'must match pattern "^[A-Z]+$"',
                )
            ],
        ),
        (
            {"name": "a", "price": 1, "tags": [{"label": "x"}, {"label": 2}]},
            [
                (
                    "/tags/1/label",
                    "#/properties/tags/items/properties/label/type",
                    "type",
                    {"type": "string"},
                    "must be string",
                )
            ],
        ),
        (
            {"price": "free"},
            [
                (
                    "",
                    "#/required",
                    "required",
                    {"missingProperty": "name"},
                    "must have required property 'name'",
                ),
                ("/price", "#/properties/price/type", "type", {"type": "number"}, "must be number"),
            ],
        ),
    ],
)
def test_each_error_is_described_as_ajv_describes_it(
    http: httpx.Client, item: dict[str, Any], errors: list[tuple[Any, ...]]
) -> None:
    ds = with_fields(http, PRODUCT)
    (invalid,) = refused(push(http, ds, [item]))
    assert invalid["itemPosition"] == 0
    described = [
        (e["instancePath"], e["schemaPath"], e["keyword"], e["params"], e["message"])
        for e in invalid["validationErrors"]
    ]
    assert sorted(described, key=repr) == sorted(errors, key=repr)


def test_each_extra_property_is_an_error_of_its_own(http: httpx.Client) -> None:
    fields = {
        "type": "object",
        "properties": {"a": {}},
        "patternProperties": {"^x-": {}},
        "additionalProperties": False,
    }
    ds = with_fields(http, fields)
    assert push(http, ds, {"a": 1, "x-kept": 2}).status_code == 201
    (invalid,) = refused(push(http, ds, {"a": 1, "b": 2, "x-ok": 3, "c/d": 4}))
    assert invalid["validationErrors"] == [
        {
            "instancePath": "",
            "schemaPath": "#/additionalProperties",
            "keyword": "additionalProperties",
            "params": {"additionalProperty": name},
            "message": "must NOT have additional properties",
        }
        for name in ("b", "c/d")
    ]


def test_instance_paths_escape_as_json_pointers(http: httpx.Client) -> None:
    ds = with_fields(
        http, {"type": "object", "properties": {"a/b": {"properties": {"c~d": {"type": "integer"}}}}}
    )
    (invalid,) = refused(push(http, ds, {"a/b": {"c~d": "x"}}))
    assert invalid["validationErrors"][0]["instancePath"] == "/a~1b/c~0d"
    assert invalid["validationErrors"][0]["schemaPath"] == "#/properties/a~1b/properties/c~0d/type"


def test_internal_references_are_followed(http: httpx.Client) -> None:
    fields = {
        "definitions": {"money": {"type": "number", "minimum": 0}},
        "type": "object",
        "properties": {"price": {"$ref": "#/definitions/money"}, "child": {"$ref": "#"}},
    }
    ds = with_fields(http, fields)
    assert push(http, ds, {"price": 1, "child": {"price": 2, "child": {}}}).status_code == 201
    (invalid,) = refused(push(http, ds, {"child": {"child": {"price": -3}}}))
    assert [e["instancePath"] for e in invalid["validationErrors"]] == ["/child/child/price"]


def test_a_large_refused_push_lists_its_first_items_and_counts_them_all(http: httpx.Client) -> None:
    ds = with_fields(http, PRODUCT)
    rows = [{"name": "ok", "price": 1} if i % 3 else {"name": "no"} for i in range(30_000)]
    body = gzip.compress(orjson.dumps(rows))
    response = http.post(
        f"/datasets/{ds}/items",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    invalid = refused(response)
    assert [item["itemPosition"] for item in invalid] == list(range(0, 3 * MAX_ITEMS_LISTED, 3))
    assert "10000 of the items" in response.json()["error"]["message"]
    assert stored(http, ds) == []


def test_items_nested_deeper_than_the_check_can_follow_are_a_400(http: httpx.Client) -> None:
    ds = with_fields(http, {"type": "object", "properties": {"a": {"$ref": "#"}}})

    def nested(levels: int) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for _ in range(levels):
            item = {"a": item}
        return item

    # 200 levels are followed to the bottom; 250 through a recursive reference are past what the check
    # follows, and refused as a bad request rather than failing the server.
    assert push(http, ds, nested(200)).status_code == 201
    error = assert_error(push(http, ds, nested(250)), 400, "invalid-value")
    assert "nests too deeply" in error["message"]


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        (["name"], "must be a JSON Schema object"),
        ({"type": "strng"}, "is not valid under any of the given schemas"),
        ({"required": "name"}, "is not of type 'array'"),
        ({"$schema": "https://json-schema.org/draft/2020-12/schema"}, '"$schema" must be'),
        ({"$ref": "https://example.com/schema.json"}, "points outside the schema"),
        ({"properties": {"a": {"$ref": "#/definitions/missing"}}}, "names nothing in the schema"),
        ({"properties": {"a": {"pattern": "("}}}, "is not a 'regex'"),
        ({"definitions": {"a": {"$ref": "#/definitions/a"}}, "$ref": "#/definitions/a"}, "in a loop"),
        ({"$ref": "#nowhere"}, "names nothing in the schema"),
        ({"properties": {"a": {"pattern": "a{1,99999999999}"}}}, "the repetition number is too large"),
    ],
)
def test_fields_that_cannot_check_items_are_refused_when_the_dataset_is_made(
    http: httpx.Client, fields: Any, why: str
) -> None:
    name = unique("badschema")
    schema = {"actorSpecification": 1, "fields": fields}
    error = assert_error(
        http.post("/datasets", params={"name": name}, json={"schema": schema}), 400, "invalid-value"
    )
    assert why in error["message"], error
    assert http.get(f"/datasets/~{name}").status_code in (400, 404)


def test_a_pattern_that_backtracks_without_end_refuses_the_push_in_its_time_limit(http: httpx.Client) -> None:
    # Python's `re` would take longer than a lifetime over these strings, holding the GIL all along.
    ds = with_fields(http, {"properties": {"a": {"pattern": "^(a|aa)+$"}}})
    assert push(http, ds, {"a": "aaaa"}).status_code == 201
    started = time.monotonic()
    error = assert_error(push(http, ds, {"a": "a" * 60 + "b"}), 400, "invalid-value")
    assert "'^(a|aa)+$' took longer than" in error["message"], error
    assert "at position 0" in error["message"]
    assert time.monotonic() - started < 30
    keyed = with_fields(
        http, {"patternProperties": {"^(x|xx)+$": {"type": "integer"}}, "additionalProperties": False}
    )
    assert push(http, keyed, {"xxx": 1}).status_code == 201
    error = assert_error(push(http, keyed, {"x" * 60 + "y": 1}), 400, "invalid-value")
    assert "took longer than" in error["message"], error
    assert stored(http, ds) == [{"a": "aaaa"}]


def test_other_requests_are_answered_while_a_push_is_checked(http: httpx.Client) -> None:
    # A small push whose check takes seconds (each string some 25 ms here): the loop answers meanwhile.
    ds = with_fields(http, {"properties": {"a": {"items": {"pattern": "^(a|aa)+$"}}}})
    with ThreadPoolExecutor(1) as pool:
        pushed = pool.submit(push, http, ds, {"a": ["a" * 23 + "b"] * 50})
        time.sleep(0.2)
        assert http.get("/users/me").status_code == 200
        assert not pushed.done()
        assert refused(pushed.result())[0]["itemPosition"] == 0


def test_few_checks_run_at_once_so_the_process_threads_stay_free(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # More slow checks than the process has worker threads (6 on 2 cores); /ready looks at the blob folder on
    # one of those threads, and answers while the checks are all still under way, each waiting its turn.
    running = apps_on("sqlite+files", backends, tmp_path_factory)
    own = next(running)
    try:
        with own.client() as http, ThreadPoolExecutor(8) as pool:
            ds = with_fields(http, {"properties": {"a": {"items": {"pattern": "^(a|aa)+$"}}}})
            slow = {"a": ["a" * 20 + "b"] * 150}  # some 1.5 s of checking here, 10 ms a string
            pushes = [pool.submit(push, http, ds, slow) for _ in range(8)]
            time.sleep(0.1)
            assert http.get(own.base_url + "/ready").status_code == 200
            assert not any(pushed.done() for pushed in pushes)
            # Each refused in the end: for its items, or (the match's limit is wall time, and this process's
            # eight client threads contend with the check's for the GIL) for a pattern found too slow.
            for pushed in pushes:
                error = assert_error(pushed.result(), 400)
                too_slow = "took longer than" in error["message"]
                assert error["type"] == "schema-validation-error" or too_slow, error
    finally:
        next(running, None)  # on to its end, which closes the app


def test_strings_each_matched_within_the_limit_add_up_to_a_refusal_at_the_time_given() -> None:
    # Each string takes a pattern tens of milliseconds here: under the limit of one match, but not in sum.
    rules = validator_for(orjson.dumps({"fields": {"items": {"pattern": "^(a|aa)+$"}}}).decode())
    assert rules is not None
    check_items(rules, [["a" * 8] * 50], seconds=0.5)  # quick ones pass
    started = time.monotonic()
    with pytest.raises(InvalidRequest) as refused:
        check_items(rules, [["a" * 24 + "b"] * 1000], seconds=0.5)
    assert time.monotonic() - started < 5
    # On this machine the sum runs out (each string takes some 40 ms); on one three times slower, each
    # string would pass the limit of one match first: either way the push is refused in time, and says why.
    assert "took longer than" in refused.value.message
    assert "position 0" in refused.value.message


def test_a_reference_found_to_lead_nowhere_only_by_an_item_is_a_400(http: httpx.Client) -> None:
    ds = with_fields(http, {"properties": {"a": {"$ref": "#nowhere"}}})
    assert push(http, ds, {"b": 1}).status_code == 201
    error = assert_error(push(http, ds, {"a": 1}), 400, "invalid-value")
    assert "'#nowhere', which leads nowhere" in error["message"], error


@pytest.mark.parametrize("fields", [["a"], {"type": "strng"}, {"$ref": "https://example.com/s.json"}])
def test_a_dataset_stored_before_with_fields_that_cannot_check_takes_any_object(
    http: httpx.Client, server: Server, fields: Any
) -> None:
    # Made past the API's check, as datasets were before it: pushes to it go on working as they did.
    assert server.app is not None
    services = server.app.app.services
    caller = server.app.run(services.users.authenticate(server.token))
    made, _ = server.app.run(
        services.datasets.stores.get_or_create(caller, unique("legacy"), {"fields": fields})
    )
    assert push(http, made.id, [{"anything": True}, {}]).status_code == 201
    assert len(stored(http, made.id)) == 2


def test_a_dataset_made_before_is_answered_as_it_is_whatever_schema_is_sent(http: httpx.Client) -> None:
    name = unique("plain")
    made = data_of(http.post("/datasets", params={"name": name}, json={}), 201)
    again = http.post("/datasets", params={"name": name}, json={"schema": {"fields": {"type": "strng"}}})
    assert data_of(again)["id"] == made["id"]
    assert push(http, made["id"], {"anything": True}).status_code == 201


@pytest.mark.parametrize(
    "schema", [None, {"views": {"all": {"transformation": {"fields": ["a"]}}}}, {"fields": True}]
)
def test_without_fields_any_object_goes(http: httpx.Client, schema: Any) -> None:
    body = {} if schema is None else {"schema": schema}
    ds = data_of(http.post("/datasets", params={"name": unique("free")}, json=body), 201)["id"]
    assert push(http, ds, [{"a": 1}, {"b": [1, 2]}]).status_code == 201
    assert len(stored(http, ds)) == 2


def test_no_item_at_all_matches_a_false_schema(http: httpx.Client) -> None:
    ds = with_fields(http, False)
    (invalid,) = refused(push(http, ds, {"a": 1}))
    assert invalid["validationErrors"] == [
        {
            "instancePath": "",
            "schemaPath": "#/false schema",
            "keyword": "false schema",
            "params": {},
            "message": "boolean schema is false",
        }
    ]
