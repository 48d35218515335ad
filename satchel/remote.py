"""A running Satchel server over its API, for the commands that work remotely (`kv`, `run`, and `import` and
`export` with --url): where the server is, and the few key-value store calls they make.

A store is named as people name it: its id, a name of the token's user (`NAME` or `~NAME`), or
`USERNAME~NAME`. A bare word is tried as an id first: ids are 17 random characters no one picks as a name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import click
import httpx

from satchel.errors import SatchelError
from satchel.local_server import local_base_url, local_token
from satchel.service.validation import NAME_RE

if TYPE_CHECKING:
    from satchel.settings import Settings

T = TypeVar("T")
# Exit codes of the commands that work remotely (2 is click's, for a command line it cannot read).
ERROR = 1
NOT_FOUND = 3  # the store or record is not there (or not visible to the token)
DENIED = 4  # no valid token, or the token may not do this
PARTIAL = 5  # a copy went through, less what it reports it skipped
# Per read or write of one chunk, not per request: a large record may take minutes to move.
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
RETRIES = 5  # of a request refused with 429 (the server already made it wait before refusing)
RETRY_SECONDS = 1.0

URL = click.option(
    "--url",
    envvar="SATCHEL_URL",
    default=None,
    help="The server, like http://127.0.0.1:8765 (default SATCHEL_URL, else the local one).",
)
TOKEN = click.option(
    "--token", envvar="SATCHEL_TOKEN", default=None, help="API token (default SATCHEL_TOKEN)."
)


LOCAL_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The local server's data dir, where the defaults of --url and --token are found (./satchel-data).",
)


def server_options(command: Callable[..., T]) -> Callable[..., T]:
    """--url and --token, shared by every command that talks to a running server."""
    return URL(TOKEN(command))


def remote_options(command: Callable[..., T]) -> Callable[..., T]:
    """--url and --token, and --data-dir for their defaults: the commands that only ever talk to a server
    (import and export take --data-dir to work on the data there instead)."""
    return server_options(LOCAL_DATA_DIR(command))


def _settings(data_dir: Path | None) -> Settings:
    """The settings, for a default the command line left out. Imported here: the settings' model takes half
    a second to load, which a command given --url and --token never needs."""
    from satchel.settings import ConfigFileError, load  # noqa: PLC0415

    try:
        return load(data_dir=data_dir)
    except ConfigFileError as error:
        raise click.ClickException(str(error)) from error


def record_count(count: int) -> str:
    """A number of records as the commands print it: "1 record", "2 records"."""
    return f"{count} record" if count == 1 else f"{count} records"


def connection(url: str | None, token: str | None, data_dir: Path | None = None) -> tuple[str, str]:
    """The server's base URL (no /v2) and the token to use: the options, else the local server's (its
    settings, else what `satchel serve` left in the data dir)."""
    if not (url and token):
        settings = _settings(data_dir)
        url = url or local_base_url(settings)
        token = token or local_token(settings)
    url = url.rstrip("/")
    if not token:
        raise click.UsageError("No token: pass --token or set SATCHEL_TOKEN.")
    return url, token


class RemoteError(SatchelError):
    """What the server answered with an error: its status, type and message."""

    def __init__(self, status: int, message: str, type: str | None = None) -> None:
        super().__init__(message, type)
        self.status = status


class Failed(click.ClickException):
    """A one-line message on stderr and an exit code that tells scripts what went wrong."""

    exit_code = ERROR


class Missing(Failed):
    exit_code = NOT_FOUND


class Denied(Failed):
    exit_code = DENIED


class Partial(Failed):
    exit_code = PARTIAL


def failure(error: RemoteError) -> Failed:
    """The exit that tells what the server refused."""
    if error.status == 404:
        return Missing(error.message)
    if error.status in (401, 403):
        return Denied(error.message)
    return Failed(error.message)


def run_remote(url: str, token: str, work: Callable[[Remote], Awaitable[T]]) -> T:
    """Run the work against the server, its errors turned into Failed with their exit codes."""

    async def go() -> T:
        async with Remote(url, token) as remote:
            return await work(remote)

    try:
        return asyncio.run(go())
    except RemoteError as error:
        raise failure(error) from error
    except SatchelError as error:
        raise Failed(error.message) from error
    except httpx.ConnectError as error:
        raise Failed(
            f"Nothing answers at {url}: is the server running? Start it with `satchel serve`, or name the one"
            " to use with --url (or SATCHEL_URL)."
        ) from error
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise Failed(
            f"The server at {url} does not answer as expected: {str(error) or type(error).__name__}"
        ) from error


def _error(response: httpx.Response) -> RemoteError:
    try:
        error = response.json()["error"]
        return RemoteError(response.status_code, str(error["message"]), str(error["type"]))
    except (ValueError, KeyError, TypeError):
        text = response.text.strip().splitlines()
        return RemoteError(response.status_code, text[0][:200] if text else response.reason_phrase)


class Remote:
    """The key-value store calls of the commands, over one connection to the server."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = httpx.AsyncClient(
            base_url=url + "/v2", headers={"authorization": f"Bearer {token}"}, timeout=TIMEOUT
        )

    async def __aenter__(self) -> Remote:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def _send(self, request: Callable[[], httpx.Request], *, retry: bool = True) -> httpx.Response:
        """The response to a request (made afresh for each try), its body not read yet; 429 is retried."""
        for attempt in range(RETRIES + 1 if retry else 1):
            response = await self.http.send(request(), stream=True)
            if response.status_code != 429 or attempt == RETRIES or not retry:
                break
            await response.aclose()
            await asyncio.sleep(RETRY_SECONDS * (attempt + 1))
        if response.is_error:
            await response.aread()
            await response.aclose()
            raise _error(response)
        return response

    async def _data(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._send(lambda: self.http.build_request(method, path, **kwargs))
        try:
            await response.aread()
        finally:
            await response.aclose()
        data: dict[str, Any] = response.json()["data"]
        return data

    async def store(self, ref: str) -> dict[str, Any]:
        """The store `ref` names (its object as the API gives it); RemoteError 404 when there is none."""
        as_name = "~" not in ref and NAME_RE.fullmatch(ref) is not None
        try:
            return await self._data("GET", f"/key-value-stores/{quote(ref, safe='~')}")
        except RemoteError as error:
            if error.status != 404 or not as_name:
                raise
        return await self._data("GET", f"/key-value-stores/~{ref}")

    async def named_store(self, name: str) -> dict[str, Any]:
        """The token's user's store of that name, made if missing."""
        return await self._data("POST", "/key-value-stores", params={"name": name})

    async def keys(self, store_id: str, prefix: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every key's item ({key, size, ...}) in key order, page by page."""
        params: dict[str, str] = {"limit": "1000"}
        if prefix:
            params["prefix"] = prefix
        while True:
            page = await self._data("GET", f"/key-value-stores/{store_id}/keys", params=params)
            for item in page["items"]:
                yield item
            if not page["isTruncated"] or not page["items"]:
                return
            params["exclusiveStartKey"] = page["nextExclusiveStartKey"]

    @contextlib.asynccontextmanager
    async def record(self, store_id: str, key: str) -> AsyncIterator[httpx.Response]:
        """A record's response, its body to be read (decoded) with `aiter_bytes`."""
        response = await self._send(lambda: self.http.build_request("GET", _record_path(store_id, key)))
        try:
            yield response
        finally:
            await response.aclose()

    async def exists(self, store_id: str, key: str) -> bool:
        try:
            response = await self._send(lambda: self.http.build_request("HEAD", _record_path(store_id, key)))
        except RemoteError as error:
            if error.status == 404:
                return False
            raise
        await response.aclose()
        return True

    async def put(
        self,
        store_id: str,
        key: str,
        content_type: str,
        body: Callable[[], AsyncIterator[bytes]],
        size: int | None = None,
        *,
        replayable: bool = True,
    ) -> None:
        """Store a record whose bytes `body()` streams, called again to retry if `replayable` (it must then
        start over). With `size`, the server may refuse a record over its limit before a byte is sent."""
        headers = {"content-type": content_type}
        if size is not None:
            headers["content-length"] = str(size)
        path = _record_path(store_id, key)
        response = await self._send(
            lambda: self.http.build_request("PUT", path, content=body(), headers=headers), retry=replayable
        )
        await response.aclose()

    async def delete(self, store_id: str, key: str) -> None:
        response = await self._send(lambda: self.http.build_request("DELETE", _record_path(store_id, key)))
        await response.aclose()


def _record_path(store_id: str, key: str) -> str:
    return f"/key-value-stores/{store_id}/records/{quote(key, safe='')}"


async def resolve_store(remote: Remote, ref: str, *, create: bool = False) -> str:
    """The id of the store `ref` names; with `create`, a name of the token's user is made if missing."""
    try:
        return str((await remote.store(ref))["id"])
    except RemoteError as error:
        if error.status != 404:
            raise
        name = ref.removeprefix("~")
        if create and NAME_RE.fullmatch(name):
            return str((await remote.named_store(name))["id"])
        raise Missing(f"Key-value store {ref!r} was not found.") from error
