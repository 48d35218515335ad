"""`satchel kv`: the records of a running server's key-value stores, from the command line.

Made for scripts as much as for people: stdout carries only what `ls` lists and what `get` reads; every
message goes to stderr, one line each; the exit code says what happened (EXIT_CODES). Bodies stream both
ways, so a record larger than memory moves as easily as a small one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import click

from satchel.crawlee_storage.files import async_chunks, chunks, write_all
from satchel.crawlee_storage.layout import CREATE, guess_type
from satchel.errors import InvalidRequest
from satchel.kv_copy import PART, download, is_folder, upload
from satchel.remote import (
    DENIED,
    ERROR,
    NOT_FOUND,
    PARTIAL,
    Failed,
    Missing,
    Partial,
    Remote,
    RemoteError,
    connection,
    record_count,
    remote_options,
    resolve_store,
    run_remote,
)
from satchel.service.validation import check_key

T = TypeVar("T")
EXIT_CODES = f"""Exit codes:
  0  done
  {ERROR}  any other error: the server does not answer or refuses, a local file fails
  2  a command line that cannot be read, or no token
  {NOT_FOUND}  the store or record is not there (or the token may not see it)
  {DENIED}  the token is not valid, or may not do this
  {PARTIAL}  `cp` copied what it could, and lists on stderr what it skipped"""
STORE_HELP = "STORE is a store's id, a name of the token's user, or USERNAME~NAME."
STDIN_HELD = 8 * 1024 * 1024  # bytes of stdin read whole to be sent with their length


@click.group(
    "kv",
    help=f"""Records of a running server's key-value stores: list, read, write, delete and copy them.

The server is --url (or SATCHEL_URL), acting as --token (or SATCHEL_TOKEN); by default the one
last started on --data-dir (./satchel-data), with the admin token kept there. {STORE_HELP}

\b
{EXIT_CODES}""",
)
def kv() -> None:
    """Records of a running server's key-value stores (the group's help, above, shows EXIT_CODES)."""


def _run(
    url: str | None, token: str | None, data_dir: Path | None, work: Callable[[Remote], Awaitable[T]]
) -> T:
    server, secret = connection(url, token, data_dir)
    try:
        return run_remote(server, secret, work)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining as it exits.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(ERROR)
    except OSError as error:  # a local file
        where = f"{error.filename}: " if error.filename else ""
        raise Failed(f"{where}{error.strerror}") from error


def _missing_record(key: str, store: str) -> Missing:
    return Missing(f"Record {key!r} was not found in {store!r}.")


@kv.command("mk")
@click.argument("name")
@remote_options
def mk(name: str, url: str | None, token: str | None, data_dir: Path | None) -> None:
    """Make the store NAME (or ~NAME) of the token's user, unless it is there; print its id either way."""

    async def work(remote: Remote) -> str:  # a name the server refuses comes back with its reason
        return str((await remote.named_store(name.removeprefix("~")))["id"])

    click.echo(_run(url, token, data_dir, work))


@kv.command("ls")
@click.argument("store")
@click.option("--prefix", default=None, help="Only the keys that start with this.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of the API's items (key, size, URL).")
@remote_options
def ls(
    store: str,
    *,
    prefix: str | None,
    as_json: bool,
    url: str | None,
    token: str | None,
    data_dir: Path | None,
) -> None:
    """List the keys of STORE in key order, one per line."""

    async def work(remote: Remote) -> None:
        store_id = await resolve_store(remote, store)
        out = sys.stdout
        first = True
        async for item in remote.keys(store_id, prefix):
            if as_json:
                out.write(("[\n" if first else ",\n") + json.dumps(item))
            else:
                out.write(item["key"] + "\n")
            first = False
        if as_json:
            out.write("[]\n" if first else "\n]\n")
        out.flush()

    _run(url, token, data_dir, work)


@kv.command("get")
@click.argument("store")
@click.argument("key")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the record to this file (replaced whole once complete) instead of stdout.",
)
@remote_options
def get(
    store: str, key: str, *, output: Path | None, url: str | None, token: str | None, data_dir: Path | None
) -> None:
    """Write the record KEY of STORE to stdout, or to a file with -o, byte for byte."""

    async def work(remote: Remote) -> None:
        store_id = await resolve_store(remote, store)
        try:
            async with remote.record(store_id, key) as response:
                if output is None or str(output) == "-":
                    async for chunk in response.aiter_bytes():
                        sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()
                    return
                with _replacing(output) as fd:
                    async for chunk in response.aiter_bytes():
                        write_all(fd, chunk)
        except RemoteError as error:
            if error.status == 404:
                raise _missing_record(key, store) from error
            raise

    _run(url, token, data_dir, work)


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[int]:
    """A new file beside `path` that replaces it once written whole; removed if writing fails. An error
    names `path`, the file asked for, not the temporary one the user never named."""
    part = path.with_name(PART.format(secrets.token_hex(8)))
    try:
        fd = os.open(part, CREATE, 0o666)
        try:
            try:
                yield fd
            finally:
                os.close(fd)
            os.replace(part, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(part)
            raise
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from error


@kv.command("put")
@click.argument("store")
@click.argument("key")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--content-type", default=None, help="The record's type (default: guessed from FILE's name, for - KEY's)."
)
@remote_options
def put(
    store: str,
    key: str,
    file: Path,
    *,
    content_type: str | None,
    url: str | None,
    token: str | None,
    data_dir: Path | None,
) -> None:
    """Store FILE (- for stdin) as the record KEY of STORE, replacing any record of that key."""
    check = _checked_key(key)
    stdin = str(file) == "-"
    content_type = content_type or guess_type(key if stdin else file.name)
    with contextlib.ExitStack() as stack:
        if stdin:
            body, size = _stdin_body()
        else:
            try:
                fd = stack.enter_context(open(file, "rb")).fileno()
            except OSError as error:
                raise Failed(f"{file}: {error.strerror}") from error
            size = os.fstat(fd).st_size

            def body() -> AsyncIterator[bytes]:
                return async_chunks(fd, size)

        async def work(remote: Remote) -> None:
            store_id = await resolve_store(remote, store)
            await remote.put(store_id, check, content_type, body, size, replayable=size is not None)

        _run(url, token, data_dir, work)


def _stdin_body() -> tuple[Callable[[], AsyncIterator[bytes]], int | None]:
    """Stdin as a body and its length: read whole when it ends within STDIN_HELD bytes, else streamed.

    A body sent with its length reaches the server whole before it answers; a server that refuses a record
    (403, 413) without reading a streamed body closes the connection on it, and the answer may be lost.
    A file is always sent with its length: the server may also refuse one over its limit before it is sent.
    """
    fd = sys.stdin.buffer.fileno()
    held = b"".join(chunks(fd, STDIN_HELD + 1))
    if len(held) <= STDIN_HELD:

        async def whole() -> AsyncIterator[bytes]:
            yield held

        return whole, len(held)

    async def streamed() -> AsyncIterator[bytes]:
        yield held
        async for chunk in async_chunks(fd, rewind=False):
            yield chunk

    return streamed, None


def _checked_key(key: str) -> str:
    try:
        return check_key(key)
    except InvalidRequest as error:
        raise click.BadParameter(error.message, param_hint="KEY") from error


@kv.command("rm")
@click.argument("store")
@click.argument("key")
@click.option("-f", "--force", is_flag=True, help="A record that is not there is no error.")
@remote_options
def rm(
    store: str, key: str, *, force: bool, url: str | None, token: str | None, data_dir: Path | None
) -> None:
    """Delete the record KEY of STORE."""

    async def work(remote: Remote) -> None:
        store_id = await resolve_store(remote, store)
        if not force and not await remote.exists(store_id, key):
            raise _missing_record(key, store)
        await remote.delete(store_id, key)

    _run(url, token, data_dir, work)


@kv.command("cp")
@click.argument("source")
@click.argument("dest")
@remote_options
def cp(source: str, dest: str, *, url: str | None, token: str | None, data_dir: Path | None) -> None:
    """Copy a folder's files into a store (`cp ./dir STORE`), or a store's records into a folder
    (`cp STORE ./dir`).

    The folder is the argument written as a path: with a `/`, or `.` or `..`. Uploading takes the files
    directly in the folder, each under its file name as key (keys cannot hold `/`), with a content type
    guessed from the name, and makes a named store of the token's user if it is missing; it follows no link.
    Downloading writes each record to a file named by its key, replacing a file of that name; a key that
    cannot be a file name there is skipped, and nothing is written outside the folder. What is skipped is
    listed on stderr (exit code 5). A progress bar shows on stderr when it is a terminal.
    """
    into_store = is_folder(source)
    if into_store == is_folder(dest):
        raise click.UsageError(
            "Give one folder and one store; write the folder as a path (./dir), the store as its id or name."
        )

    async def work(remote: Remote) -> tuple[int, list[str]]:
        if into_store:
            return await upload(remote, Path(source), dest)
        return await download(remote, source, Path(dest))

    copied, skipped = _run(url, token, data_dir, work)
    for problem in skipped:
        click.echo(f"skipped {problem}", err=True)
    click.echo(f"{record_count(copied)} copied to {dest}", err=True)
    if skipped:
        raise Partial(f"{len(skipped)} skipped (listed above).")
