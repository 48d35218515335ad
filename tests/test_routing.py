"""The dispatcher made from the route table: raw-path routing, per-segment decoding, and a table that could
not be dispatched unambiguously refused when it is compiled."""

from __future__ import annotations

import httpx
import pytest

from satchel.api import routing
from satchel.api.routing import ROUTES, PageNotFound, Route, compile_routes, methods, resolve
from satchel.api.spec.document import GET_OPENAPI, document
from satchel.errors import InvalidRequest
from satchel.storage import StorageKind
from tests.conftest import Server

RECORD = "/v2/key-value-stores/{storeId}/records/{recordKey}"


def route(template: str) -> Route:
    return next(r for r in ROUTES if r.template == template)


def test_a_record_path_gives_its_route_and_parameters_by_name() -> None:
    found, params = resolve(b"/v2/key-value-stores/~my-store/records/INPUT")
    assert found is route(RECORD)
    assert params == {"storeId": "~my-store", "recordKey": "INPUT"}
    assert found.record
    assert found.storage == ("storeId", StorageKind.KEY_VALUE_STORE)


def test_an_encoded_slash_stays_in_its_segment() -> None:
    found, params = resolve(b"/v2/key-value-stores/admin%2Fstore/records/a%2Fb%2F..%2Fkeys")
    assert found is route(RECORD)
    assert params == {"storeId": "admin/store", "recordKey": "a/b/../keys"}


def test_segments_are_decoded_as_utf8_one_by_one() -> None:
    assert resolve(b"/v2/users/caf%C3%A9")[1] == {"userId": "caf\u00e9"}
    # A literal is matched as sent: an encoded `me` is a user called `me`, not the caller.
    assert resolve(b"/v2/users/m%65")[0] is route("/v2/users/{userId}")


def test_a_literal_beats_a_parameter() -> None:
    assert resolve(b"/v2/users/me") == (route("/v2/users/me"), {})
    assert resolve(b"/v2/users/mee") == (route("/v2/users/{userId}"), {"userId": "mee"})
    assert resolve(b"/v2/key-value-stores/x/keys")[0] is route("/v2/key-value-stores/{storeId}/keys")


def test_one_trailing_slash_is_forgiven() -> None:
    assert resolve(b"/v2/key-value-stores/")[0] is route("/v2/key-value-stores")
    assert resolve(b"/v2/key-value-stores/s/keys/")[0] is route("/v2/key-value-stores/{storeId}/keys")
    # Two are not: the second names an empty record key.
    assert resolve(b"/v2/key-value-stores/s/records//") == (route(RECORD), {"storeId": "s", "recordKey": ""})
    with pytest.raises(PageNotFound):
        resolve(b"/v2/openapi.json//")


def test_a_non_ascii_path_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="must be ASCII"):
        resolve("/v2/key-value-stores/s/records/caf\u00e9".encode())


def test_a_segment_that_is_not_utf8_is_refused() -> None:
    for path in (
        b"/v2/key-value-stores/s/records/%FF",
        b"/v2/key-value-stores/%C0%AE/keys",
        b"/v2/users/%80",
    ):
        with pytest.raises(InvalidRequest, match="not valid UTF-8"):
            resolve(path)


@pytest.mark.parametrize(
    "path",
    [
        b"/",
        b"",
        b"*",
        b"v2/openapi.json",
        b"/v2",
        b"/v2/",
        b"/v1/key-value-stores",
        b"/v2/key-value-stores/s/nothing",
        b"/v2/key-value-stores/s/records/k/more",
        b"/v2/users/me/x",
        b"/v2/openapi.json/..",
        # Unknown first, however its segments are encoded: not a decoding error.
        b"/v2/key-value-stores/%FF/nothing",
        b"/v2/key-value-stores/s/k%65ys",  # a literal is matched as sent
    ],
)
def test_an_unknown_path_is_not_found(path: bytes) -> None:
    with pytest.raises(PageNotFound, match="There is no API endpoint at"):
        resolve(path)


def test_an_unknown_path_answers_the_error_envelope(server: Server) -> None:
    response = httpx.get(server.api + "/key-value-stores/s/nothing")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "type": "page-not-found",
            "message": "There is no API endpoint at /v2/key-value-stores/s/nothing.",
        }
    }


def test_a_route_table_that_is_ambiguous_is_refused() -> None:
    ok = methods(GET=(document, GET_OPENAPI))
    with pytest.raises(ValueError, match="twice"):
        compile_routes([Route("/v2/a/{x}", ok), Route("/v2/a/{x}", ok)])
    with pytest.raises(ValueError, match="elsewhere"):
        compile_routes([Route("/v2/a/{x}", ok), Route("/v2/a/{y}/b", ok)])
    with pytest.raises(ValueError, match="no parameter"):
        compile_routes([Route("/v2/a/{x}", ok, storage=("y", StorageKind.DATASET))])
    with pytest.raises(ValueError, match="parameter twice"):
        compile_routes([Route("/v2/a/{x}/{x}", ok)])
    with pytest.raises(ValueError, match="bad segment"):
        compile_routes([Route("/v2/a/{x}.json", ok)])
    assert routing.TRIE.literals[""].literals["v2"].literals["users"].param_name == "userId"
