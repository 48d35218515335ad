"""The HTTP contract of records: writing and reading them exactly, their Content-Encoding and
Content-Disposition, the keys they may have, and all of a store's records as a ZIP.

With plain httpx against the app in-process on every engine. What is asserted here is what the specification
says (the API reference and what the official clients send and expect), not what the code happens to do.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from typing import Any

import httpx
import pytest

from tests.conftest import Server, every_engine
from tests.harness.contract import (
    COMPRESSORS,
    KEY_CHARS,
    USERNAME,
    create_named,
    get_store,
    keys_page,
    put,
    raw_get,
    record_path,
)
from tests.harness.envelope import assert_error, unique

server = every_engine(in_process=True)


# --- records


def test_put_and_get_record_exactly(http: httpx.Client, store: dict[str, Any]) -> None:
    body = bytes(range(256)) * 7
    response = http.put(
        record_path(store, "bin"), content=body, headers={"content-type": "image/x-custom; foo=bar"}
    )
    assert response.status_code in (200, 201)
    assert response.headers["location"].endswith(f"/v2/key-value-stores/{store['id']}/records/bin")
    got = http.get(record_path(store, "bin"))
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["content-type"] == "image/x-custom; foo=bar"
    assert "accept-encoding" in got.headers["vary"].lower()


def test_put_json_record(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "INPUT", b'{"foo": "bar"}', "application/json; charset=utf-8")
    got = http.get(record_path(store, "INPUT"))
    assert got.json() == {"foo": "bar"}
    assert got.headers["content-type"] == "application/json; charset=utf-8"


def test_post_is_an_alias_of_put(http: httpx.Client, store: dict[str, Any]) -> None:
    response = http.post(
        record_path(store, "posted"), content=b"hello", headers={"content-type": "text/plain"}
    )
    assert response.status_code in (200, 201)
    got = http.get(record_path(store, "posted"))
    assert got.content == b"hello"
    assert got.headers["content-type"] == "text/plain"


def test_put_overwrites(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "k", b"first", "text/plain")
    put(http, store, "k", b"second value", "application/x-second")
    got = http.get(record_path(store, "k"))
    assert got.content == b"second value"
    assert got.headers["content-type"] == "application/x-second"


def test_put_without_content_type(http: httpx.Client, store: dict[str, Any]) -> None:
    response = http.put(record_path(store, "untyped"), content=b"\x00\x01data")
    assert "content-type" not in response.request.headers
    assert response.status_code in (200, 201)
    got = http.get(record_path(store, "untyped"))
    assert got.status_code == 200
    assert got.content == b"\x00\x01data"
    assert got.headers.get("content-type")


def test_put_empty_body(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "empty", b"", "text/plain")
    got = http.get(record_path(store, "empty"))
    assert got.status_code == 200
    assert got.content == b""
    assert got.headers["content-type"] == "text/plain"


def test_head_record(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "here", b"12345", "text/plain")
    present = http.head(record_path(store, "here"))
    assert present.status_code == 200
    assert present.content == b""
    assert present.headers["content-type"] == "text/plain"

    absent = http.head(record_path(store, "absent"))
    assert absent.status_code == 404
    assert absent.content == b""


def test_head_record_of_missing_store(http: httpx.Client) -> None:
    response = http.head("/key-value-stores/NoSuchStoreId1234/records/k")
    assert response.status_code == 404
    assert response.content == b""


def test_delete_record(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "gone", b"x")
    response = http.delete(record_path(store, "gone"))
    assert response.status_code == 204
    assert response.content == b""
    assert_error(http.get(record_path(store, "gone")), 404, "record-not-found")
    assert http.head(record_path(store, "gone")).status_code == 404
    assert keys_page(http, store)["items"] == []


def test_get_missing_record(http: httpx.Client, store: dict[str, Any]) -> None:
    assert_error(http.get(record_path(store, "nothing-here")), 404, "record-not-found")


def test_record_of_missing_store(http: httpx.Client) -> None:
    assert_error(http.get("/key-value-stores/NoSuchStoreId1234/records/k"), 404, "record-not-found")
    assert_error(http.get(f"/key-value-stores/~{unique('missing')}/records/k"), 404, "record-not-found")
    response = http.put(
        "/key-value-stores/NoSuchStoreId1234/records/k", content=b"x", headers={"content-type": "text/plain"}
    )
    assert_error(response, 404, "record-not-found")


def test_records_by_store_name(http: httpx.Client) -> None:
    store = create_named(http)
    for ref in (f"~{store['name']}", f"{USERNAME}~{store['name']}"):
        response = http.put(
            f"/key-value-stores/{ref}/records/by-name",
            content=ref.encode(),
            headers={"content-type": "text/plain"},
        )
        assert response.status_code in (200, 201)
        assert http.get(record_path(store, "by-name")).content == ref.encode()
        assert http.get(f"/key-value-stores/{ref}/records/by-name").content == ref.encode()


# --- Content-Encoding


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compressed_upload_served_as_stored_or_decoded(
    http: httpx.Client, store: dict[str, Any], encoding: str
) -> None:
    payload = b'{"hello": "world"} ' * 200
    compressed = COMPRESSORS[encoding](payload)
    put(http, store, "packed", compressed, "application/json", encoding)
    path = record_path(store, "packed")

    response, body = raw_get(http, path, f"identity, {encoding}")
    assert response.status_code == 200
    assert response.headers["content-encoding"] == encoding
    assert body == compressed
    assert response.headers["content-type"] == "application/json"
    assert "accept-encoding" in response.headers["vary"].lower()

    response, body = raw_get(http, path, "identity")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert body == payload
    assert response.headers["content-type"] == "application/json"
    assert "accept-encoding" in response.headers["vary"].lower()

    # httpx's own decoding gives the payload whatever it negotiated.
    assert http.get(path).content == payload


def test_stored_encoding_not_accepted_is_decoded(http: httpx.Client, store: dict[str, Any]) -> None:
    payload = b"abc" * 1000
    put(http, store, "g", gzip.compress(payload), "text/plain", "gzip")
    response, body = raw_get(http, record_path(store, "g"), "br")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert body == payload


@pytest.mark.parametrize(
    ("accept_encoding", "stored"),
    [("*", True), ("GZIP", True), ("br, gzip;q=0.5", True), ("gzip;q=0", False), ("gzip;q=0, *", False)],
)
def test_accept_encoding_negotiation(
    http: httpx.Client, store: dict[str, Any], accept_encoding: str, stored: bool
) -> None:
    payload = b"negotiate " * 100
    compressed = gzip.compress(payload)
    put(http, store, "n", compressed, "text/plain", "gzip")
    response, body = raw_get(http, record_path(store, "n"), accept_encoding)
    assert response.status_code == 200
    if stored:
        assert response.headers["content-encoding"] == "gzip"
        assert body == compressed
    else:
        assert "content-encoding" not in response.headers
        assert body == payload


def test_identity_record_has_vary(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "plain", b"plain", "text/plain")
    response, body = raw_get(http, record_path(store, "plain"), "gzip, br")
    assert body == b"plain"
    assert "content-encoding" not in response.headers
    assert "accept-encoding" in response.headers["vary"].lower()


def test_identity_content_encoding_is_accepted(http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "ident", b"as is", "text/plain", "identity")
    response, body = raw_get(http, record_path(store, "ident"), "gzip")
    assert body == b"as is"
    assert response.headers.get("content-encoding", "identity") == "identity"


@pytest.mark.parametrize("encoding", ["compress", "zstd", "gzip, br", "bogus"])
def test_unsupported_content_encoding(http: httpx.Client, store: dict[str, Any], encoding: str) -> None:
    response = http.put(
        record_path(store, "enc"),
        content=b"whatever",
        headers={"content-type": "text/plain", "content-encoding": encoding},
    )
    assert_error(response, 415, "unsupported-content-encoding")
    assert http.head(record_path(store, "enc")).status_code == 404


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_body_that_lies_about_its_encoding(http: httpx.Client, store: dict[str, Any], encoding: str) -> None:
    response = http.put(
        record_path(store, "liar"),
        content=b"this is not compressed at all" * 10,
        headers={"content-type": "text/plain", "content-encoding": encoding},
    )
    assert_error(response, 400)
    assert http.head(record_path(store, "liar")).status_code == 404
    assert keys_page(http, store)["items"] == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_empty_body_that_says_it_is_encoded(http: httpx.Client, store: dict[str, Any], encoding: str) -> None:
    response = http.put(
        record_path(store, "hollow"),
        content=b"",
        headers={"content-type": "text/plain", "content-encoding": encoding},
    )
    error = assert_error(response, 400, "invalid-value")
    assert "empty" in error["message"]
    assert encoding in error["message"]
    assert http.head(record_path(store, "hollow")).status_code == 404
    # Nothing, encoded, is a few bytes: that is an empty record in that encoding.
    put(http, store, "hollow", COMPRESSORS[encoding](b""), "text/plain", encoding)
    response, body = raw_get(http, record_path(store, "hollow"), "identity")
    assert response.status_code == 200
    assert body == b""


def test_truncated_gzip_body(http: httpx.Client, store: dict[str, Any]) -> None:
    compressed = gzip.compress(b"0123456789" * 1000)
    response = http.put(
        record_path(store, "cut"),
        content=compressed[: len(compressed) // 2],
        headers={"content-type": "text/plain", "content-encoding": "gzip"},
    )
    assert_error(response, 400)
    assert http.head(record_path(store, "cut")).status_code == 404


# --- Content-Disposition and stored HTML


@pytest.mark.parametrize("flag", ["1", "true"])
def test_attachment_flag(http: httpx.Client, store: dict[str, Any], flag: str) -> None:
    put(http, store, "file", b"data", "text/plain")
    response = http.get(record_path(store, "file"), params={"attachment": flag})
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.content == b"data"


def test_stored_html_is_served_safely(http: httpx.Client, store: dict[str, Any]) -> None:
    html = b"<html><body><script>alert(document.cookie)</script></body></html>"
    put(http, store, "page", html, "text/html; charset=utf-8")
    response = http.get(record_path(store, "page"))
    assert response.status_code == 200
    csp = response.headers.get("content-security-policy", "")
    disposition = response.headers.get("content-disposition", "")
    assert "sandbox" in csp or disposition.startswith("attachment"), response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


# --- record keys


def test_longest_key(http: httpx.Client, store: dict[str, Any]) -> None:
    key = "k" * 256
    put(http, store, key, b"long")
    assert http.get(record_path(store, key)).content == b"long"
    assert [item["key"] for item in keys_page(http, store)["items"]] == [key]


def test_key_too_long(http: httpx.Client, store: dict[str, Any]) -> None:
    key = "k" * 257
    response = http.put(record_path(store, key), content=b"x", headers={"content-type": "text/plain"})
    assert_error(response, 400, "invalid-record-key")
    assert_error(http.get(record_path(store, key)), 400, "invalid-record-key")


@pytest.mark.parametrize(
    "raw_key", ["has%20space", "a%2Fb", "%2F", "semi%3Bcolon", "tilde~", "%C3%A9", "a%0A"]
)
def test_invalid_keys(http: httpx.Client, store: dict[str, Any], raw_key: str) -> None:
    url = httpx.URL(f"{http.base_url}".rstrip("/") + record_path(store, raw_key))
    response = http.put(url, content=b"x", headers={"content-type": "text/plain"})
    assert_error(response, 400, "invalid-record-key")
    assert_error(http.get(url), 400, "invalid-record-key")
    assert keys_page(http, store)["items"] == []


def test_special_characters_in_keys(http: httpx.Client, store: dict[str, Any]) -> None:
    keys = [KEY_CHARS, "a!b", "it's", "(x)", "a.b", "...", "-_-", "A-Z_0.9"]
    for key in keys:
        put(http, store, key, key.encode(), "text/plain")
    for key in keys:
        got = http.get(record_path(store, key))
        assert got.status_code == 200, key
        assert got.content == key.encode()
    listed = [item["key"] for item in keys_page(http, store)["items"]]
    assert listed == sorted(keys, key=lambda k: k.encode())


def test_percent_encoded_valid_key(server: Server, http: httpx.Client, store: dict[str, Any]) -> None:
    put(http, store, "abc(1)", b"enc", "text/plain")
    status, _, body = server.raw_request("GET", f"/v2/key-value-stores/{store['id']}/records/abc%281%29")
    assert status == 200
    assert body == b"enc"


@pytest.mark.parametrize("segment", ["%2E", "%2E%2E", "%2e", "%2e%2e", ".%2E"])
def test_dot_keys_are_refused(
    server: Server, http: httpx.Client, store: dict[str, Any], segment: str
) -> None:
    path = f"/v2/key-value-stores/{store['id']}/records/{segment}"
    for method, body in (("PUT", b"dot"), ("GET", None)):
        status, headers, raw = server.raw_request(method, path, body)
        response = httpx.Response(status, headers=headers, content=raw)
        assert_error(response, 400, "invalid-record-key")
    assert keys_page(http, store)["items"] == []
    assert get_store(http, store["id"])["name"] is None  # nothing changed the store itself


@pytest.mark.parametrize("segment", [".", ".."])
def test_literal_dot_segments_are_refused(
    server: Server, http: httpx.Client, store: dict[str, Any], segment: str
) -> None:
    path = f"/v2/key-value-stores/{store['id']}/records/{segment}"
    for method, body in (("PUT", b"dot"), ("GET", None)):
        status, headers, raw = server.raw_request(method, path, body)
        assert_error(httpx.Response(status, headers=headers, content=raw), 400, "invalid-record-key")
    assert keys_page(http, store)["items"] == []


# --- GET /v2/key-value-stores/{storeId}/records (ZIP)


def test_download_all_records_as_zip(http: httpx.Client, store: dict[str, Any]) -> None:
    records = {
        "a-text": (b"plain text", None),
        "b-gzip": (b"gzipped " * 300, "gzip"),
        "c-br": (b"brotli " * 300, "br"),
        "d-deflate": (b"deflated " * 300, "deflate"),
        "other": (b"other", None),
    }
    for key, (payload, encoding) in records.items():
        body = COMPRESSORS[encoding](payload) if encoding else payload
        put(http, store, key, body, "text/plain", encoding)

    response = http.get(f"/key-value-stores/{store['id']}/records")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/zip")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == sorted(records)
        for key, (payload, _) in records.items():
            assert archive.read(key) == payload, key

    filtered = http.get(f"/key-value-stores/{store['id']}/records", params={"prefix": "b-"})
    assert filtered.status_code == 200
    with zipfile.ZipFile(io.BytesIO(filtered.content)) as archive:
        assert archive.namelist() == ["b-gzip"]


def test_download_empty_store_as_zip(http: httpx.Client, store: dict[str, Any]) -> None:
    response = http.get(f"/key-value-stores/{store['id']}/records")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/zip")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == []


def test_download_records_of_missing_store(http: httpx.Client) -> None:
    assert_error(http.get("/key-value-stores/NoSuchStoreId1234/records"), 404, "record-not-found")
