"""The connection pool, and the one place where "PostgreSQL does not answer" becomes Unavailable (a 503).

asyncpg's pool heals by itself: a connection the server closed (a restart, a failover) is noticed when the
socket closes and replaced at its next acquire, and while the server is down each acquire tries a fresh
connect, so requests fail fast with a 503 and succeed again once it is back, with no restart of Satchel.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from satchel.errors import SatchelError, Unavailable
from satchel.settings import PostgresSettings

Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record] | asyncpg.Connection[asyncpg.Record]"
DOWN_MESSAGE = "The database does not answer; try again."
DEFAULT_PORT = "5432"

# Server-side errors that mean "not now" rather than "wrong": connection failures (08), the server shutting
# down, starting up or cancelling (57: admin/crash shutdown, cannot connect now), too many connections or a
# full disk (53), and a failover that left us on a read-only standby.
_DOWN_SERVER = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.ReadOnlySQLTransactionError,
)
# InterfaceError covers a dead connection (ConnectionDoesNotExistError, "connection is closed"); these
# subclasses of it are mistakes in a query's arguments, not outages.
_CLIENT_MISTAKES = (
    asyncpg.DataError,
    asyncpg.ClientConfigurationError,
    asyncpg.UnsupportedClientFeatureError,
)


# What PostgreSQL refuses at connect for good rather than for now: a wrong password, a role or database that
# is not there, a client pg_hba.conf lets in nowhere. Such a start (or `satchel migrate`) ended in asyncpg's
# 40-line traceback; it says what PostgreSQL said in one line, as a refusal of the object store does.
_REFUSALS = (
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InsufficientPrivilegeError,
)
# The URL's parameters that asyncpg does not take itself are settings of the session (?application_name=x),
# which PostgreSQL checks at connect: a name it does not know, a value it refuses, one it sets only at start.
_REFUSED_PARAMETERS = (
    asyncpg.UndefinedObjectError,
    asyncpg.InvalidParameterValueError,
    asyncpg.CantChangeRuntimeParamError,
)


def refusal(exc: BaseException) -> SatchelError | None:
    """The error to raise for a connection PostgreSQL refuses, or asyncpg refuses to try for what the URL
    says (settings.py checks what it can before), or None when it is neither."""
    if isinstance(exc, asyncpg.ClientConfigurationError):  # says what is wrong without quoting the URL
        return SatchelError(f"The database URL cannot be used: {_one_line(exc)}.")
    if isinstance(exc, _REFUSED_PARAMETERS):
        return SatchelError(f"PostgreSQL refuses a parameter of the database URL: {_one_line(exc)}.")
    if isinstance(exc, _REFUSALS):
        return SatchelError(f"PostgreSQL refuses the connection: {_one_line(exc)}.")
    return None


def _one_line(exc: BaseException) -> str:
    """asyncpg's message, with the HINT it puts on a line of its own."""
    return " ".join(str(exc).split()).rstrip(".")


def unreachable(dsn: str, exc: BaseException, timeout: float) -> Unavailable:
    """The error to raise when a new connection to the database gets no answer, naming where it was tried and
    what happened. It is said where a node or a command starts, to whoever gave --database, who must tell a
    wrong host or port from a database that is down; answers to requests keep DOWN_MESSAGE, which shows
    clients no host."""
    if isinstance(exc, ConnectionRefusedError):  # asyncio's says "Connect call failed (address)"
        why = "connection refused"
    elif isinstance(exc, TimeoutError):
        why = f"nothing came back within {timeout:g} s"
    elif isinstance(exc, OSError) and exc.strerror:  # a host name not known, a socket not there
        why = exc.strerror[:1].lower() + exc.strerror[1:]
    else:
        why = str(exc) or type(exc).__name__
    return Unavailable(f"The database at {address(dsn)} does not answer: {why}.")


def address(dsn: str) -> str:
    """Where a PostgreSQL URL points, as HOST:PORT (several comma-separated; a Unix socket as its file), never
    with its user or password. The hosts and port come from the URL, else its `host` and `port` parameters,
    else PGHOST and PGPORT, as asyncpg takes them."""
    parts = urlsplit(dsn)
    params = parse_qs(parts.query)
    hosts = unquote(parts.netloc.rpartition("@")[2]) or params.get("host", [os.environ.get("PGHOST", "")])[-1]
    port = params.get("port", [os.environ.get("PGPORT", DEFAULT_PORT)])[-1]
    if not hosts:
        return f"the local socket or localhost:{port}"  # asyncpg tries the usual socket folders, then TCP
    return ",".join(_with_port(host, port) for host in hosts.split(","))


def _with_port(host: str, port: str) -> str:
    if host.startswith("/"):
        return f"{host.rstrip('/')}/.s.PGSQL.{port}"
    if ":" in host and not host.endswith("]"):  # HOST:PORT, or [IPv6]:PORT
        return host
    return f"{host}:{port}"


def is_down(exc: BaseException) -> bool:
    """Whether an error means the database is unreachable or refusing work for now (OSError covers
    refused connections and TimeoutError, which is asyncio.TimeoutError).

    InternalClientError counts too: when the server ends a connection that sits idle in the pool (a
    shutdown), its FATAL message puts the connection in a state that refuses the next query with that error
    until the socket is seen to close, and the pool hands such a connection out meanwhile.
    """
    if isinstance(exc, asyncpg.InterfaceError):
        return not isinstance(exc, _CLIENT_MISTAKES)
    return isinstance(
        exc,
        (
            OSError,
            *_DOWN_SERVER,
            asyncpg.exceptions.TargetServerAttributeNotMatched,
            asyncpg.exceptions.InternalClientError,
        ),
    )


async def _keep_session(_conn: Connection) -> None:
    """What the pool does to a connection it takes back, beyond rolling back a transaction left open: nothing.

    asyncpg's default sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every
    release, a round trip as long as the query's own. Satchel leaves no session state on pooled connections
    (no SET, session advisory locks, cursors outside a transaction or LISTEN: the feed listens on its own).
    """


class Database:
    def __init__(self, dsn: str, settings: PostgresSettings) -> None:
        self.dsn = dsn
        self.settings = settings
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None

    async def open(self) -> None:
        if self._pool is not None:
            return
        timeout = self.settings.timeout_seconds
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=min(self.settings.pool_min, self.settings.pool_max),
                max_size=self.settings.pool_max,
                timeout=timeout,  # to connect
                command_timeout=timeout,  # for each query's answer
                reset=_keep_session,
            )
        except Exception as exc:
            if is_down(exc):
                raise unreachable(self.dsn, exc, timeout) from exc
            if refused := refusal(exc):
                raise refused from exc
            raise

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self.settings.timeout_seconds)
            except TimeoutError:
                pool.terminate()  # a connection still held by a stuck query: drop the sockets
            except BaseException:
                pool.terminate()
                raise

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise RuntimeError("The PostgreSQL engine is not open.")
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection; errors raised while it is held that mean "down" come out as Unavailable."""
        pool = self.pool
        try:
            # The deadline on this task rather than the pool's own timeout, which on Python 3.11 runs each
            # acquire as a task of its own (asyncpg's wait_for): a timer costs less than a task per query.
            async with asyncio.timeout(self.settings.timeout_seconds):
                conn = await pool.acquire()
            try:
                yield conn
            except Exception as exc:
                # A query that timed out leaves its connection waiting for PostgreSQL to confirm the cancel,
                # and release() waits for that, up to the connect timeout again when the server does not
                # answer: a frozen database held each request for twice postgres.timeout_seconds. Dropped
                # here, it is released at once, and the pool opens a fresh one when the server is back.
                if is_down(exc):
                    conn.terminate()
                raise
            finally:
                await pool.release(conn)
        except Exception as exc:
            if is_down(exc):
                raise Unavailable(DOWN_MESSAGE) from exc
            raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection in a transaction (READ COMMITTED), committed when the block ends."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    # Typed locals: mypy is strict with asyncpg's stubs (asyncpg-stubs) and without them.
    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.connection() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self.connection() as conn:
            return await conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        """Run one statement (its own transaction); returns its status, e.g. "DELETE 1"."""
        async with self.connection() as conn:
            status: str = await conn.execute(sql, *args)
        return status


def holds_nul(*values: object) -> bool:
    """Whether any of the values is text holding NUL (U+0000). PostgreSQL's text cannot hold it, and asyncpg
    fails a query given one; nothing stored holds it either (ids and names are checked on write), so a lookup
    by such a value finds nothing without asking, as it finds nothing on SQLite."""
    return any(isinstance(value, str) and "\x00" in value for value in values)


def count(status: str) -> int:
    """The row count of a command status such as "DELETE 3" or "INSERT 0 1"."""
    return int(status.rsplit(" ", 1)[-1])


def within_bytes(candidates: str, order: str, max_bytes: str) -> str:
    """The candidates (a query in `order` with its LIMIT, selecting `body`) up to the one before which the
    bodies reach max_bytes (always the first), each with `through`, the bodies' bytes up to and including its
    own. octet_length reads a stored body's size, not the body; a body kept elsewhere (NULL) counts 0."""
    size = "coalesce(octet_length(body), 0)"
    through = f"coalesce(sum({size}) OVER (ORDER BY {order} ROWS UNBOUNDED PRECEDING), 0)"
    counted = f"SELECT c.*, {through} AS through, {through} - {size} AS before FROM ({candidates}) c"  # noqa: S608
    return f"SELECT * FROM ({counted}) w WHERE before < {max_bytes} ORDER BY {order}"  # noqa: S608
