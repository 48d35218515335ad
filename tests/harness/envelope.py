"""The API's two envelopes, checked the same way by every test: `{"data": ...}` on success and
`{"error": {"type", "message"}}` on an error, nothing else beside them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def unique(prefix: str) -> str:
    """A name no other test (or earlier run on the same server) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def assert_error(response: httpx.Response, status: int, error_type: str | None = None) -> dict[str, Any]:
    """The status, and the error envelope with a non-empty type and message; returns the error."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["type"], str)
    assert error["type"]
    assert isinstance(error["message"], str)
    assert error["message"]
    if error_type is not None:
        assert error["type"] == error_type, error
    return error  # type: ignore[no-any-return]


def answer(response: httpx.Response) -> tuple[int, str | None]:
    """The status and, for an error, its type: what two endpoints that must answer alike are compared by."""
    if response.status_code >= 400:
        return response.status_code, assert_error(response, response.status_code)["type"]
    return response.status_code, None


def data_of(response: httpx.Response, status: int = 200) -> Any:
    """The status, and what the data envelope holds."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"data"}, body
    return body["data"]
