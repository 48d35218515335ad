"""The few API calls `satchel run` makes: start or resume a run, read it back, add to its log, record its end.

An error answer becomes the command line's own error, with the server's message."""

from __future__ import annotations

from typing import Any

import click
import httpx

from satchel.run_log import LogFull

HTTP_TIMEOUT = 30.0


class Api:
    """The few API calls `satchel run` makes."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url + "/v2", headers={"authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
        )

    def _data(self, response: httpx.Response) -> dict[str, Any]:
        if response.is_error:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise click.ClickException(f"{response.request.method} {response.request.url.path}: {message}")
        data: dict[str, Any] = response.json()["data"]
        return data

    def start(self, actor: str, body: bytes | None, memory: int) -> dict[str, Any]:
        headers = {"content-type": "application/json"} if body is not None else {}
        response = self.http.post(
            f"/acts/~{actor}/runs",
            params={"origin": "CLI", "memory": memory},
            content=body or b"",
            headers=headers,
        )
        return self._data(response)

    def get(self, run_id: str) -> dict[str, Any]:
        return self._data(self.http.get(f"/actor-runs/{run_id}"))

    def resume(self, run_id: str) -> dict[str, Any]:
        """The run RUNNING again, with what its last end recorded cleared."""
        body: dict[str, Any] = {"status": "RUNNING", "exitCode": None, "statusMessage": None}
        body["isStatusMessageTerminal"] = False
        return self._data(self.http.put(f"/actor-runs/{run_id}", json=body))

    def append_log(self, run_id: str, text: bytes) -> None:
        response = self.http.post(
            f"/actor-runs/{run_id}/log", content=text, headers={"content-type": "text/plain; charset=utf-8"}
        )
        if response.status_code == 413 and "log-too-large" in response.text:
            raise LogFull  # what fits was kept
        if response.is_error:
            self._data(response)  # raises, with the server's message

    def finish(
        self,
        run_id: str,
        status: str,
        exit_code: int,
        message: str | None = None,
        finished_at: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status, "exitCode": exit_code}
        if message is not None:
            body["statusMessage"] = message
        if finished_at is not None:
            body["finishedAt"] = finished_at
        return self._data(self.http.put(f"/actor-runs/{run_id}", json=body))
