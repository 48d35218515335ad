from __future__ import annotations

import httpx

from tests.conftest import Server


def test_put_and_get_a_record(server: Server, http: httpx.Client, store: dict[str, object]) -> None:
    url = f"/key-value-stores/{store['id']}/records/hello"
    assert http.put(url, content=b"world", headers={"content-type": "text/plain"}).status_code == 201
    response = http.get(url)
    assert response.status_code == 200
    assert response.content == b"world"
    assert response.headers["content-type"] == "text/plain"
