"""The URLs of the settings (the database, the object store, the public URL): checked when the settings are
read, so that a malformed one is one line naming what is wrong rather than a traceback from the driver when it
connects (or, for the public URL, every URL handed out gone wrong), and shown without their secrets, wherever
an error quotes them."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

POSTGRES_SCHEMES = ("postgres://", "postgresql://")
POSTGRES_FORM = "postgresql://USER[:PASSWORD]@HOST:PORT/DB"
# asyncpg's, which it checks only when it connects (it takes verify_ca for verify-ca too).
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Query parameters that carry a secret: asyncpg takes the password (and a key's passphrase) from them too.
_SECRET_PARAMETER = re.compile(r"([?&](?:ssl)?password=)[^&#]*", re.IGNORECASE)


def redacted(url: str) -> str:
    """The URL as an error may show it: whatever stands between `://` and the last `@` (a user and password,
    or a password holding an unescaped `/` or `?`) becomes `***`, as does a password parameter. A malformed
    URL loses more than its user info rather than show any of it."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return scheme + separator + _SECRET_PARAMETER.sub(r"\1***", rest)


def without_password(url: str) -> str:
    """The URL whole when it carries no password (a user name is no secret), else as redacted() shows it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return redacted(url)
    return url if password is None and not _SECRET_PARAMETER.search(url) else redacted(url)


def check_database(url: str) -> str:
    """A PostgreSQL URL as far as it can be checked without connecting (empty: SQLite); else a ValueError
    saying what is wrong with it, without quoting it (the caller shows it redacted)."""
    if not url:
        return url
    if not url.startswith(POSTGRES_SCHEMES):
        raise ValueError(f"it is not a PostgreSQL URL: leave it empty for SQLite, or give {POSTGRES_FORM}")
    try:
        parts = urlsplit(url)
    except ValueError as error:  # a [ without its ], or the other way round
        raise ValueError(f"its host cannot be read ({error}); an IPv6 address is written [::1]") from None
    try:
        query = parse_qs(parts.query, strict_parsing=True) if parts.query else {}
    except ValueError:
        raise ValueError("its query is not NAME=VALUE parameters joined by &") from None
    if "@" not in parts.netloc and "@" in parts.path + parts.fragment:
        # user:pa/ss@host: the URL's host would be "user", its port "pa", and the password shown as such.
        raise ValueError("its user or password holds a /, ? or # not written as %2F, %3F or %23")
    hosts = parts.netloc.partition("@")[2] if "@" in parts.netloc else parts.netloc  # as asyncpg splits it
    for host in hosts.split(",") if hosts else []:
        _check_port(_port_of(host))
    for ports in query.get("port", []):
        for port in ports.split(","):
            _check_port(port)
    for mode in query.get("sslmode", []):
        if mode.replace("_", "-") not in SSL_MODES:
            raise ValueError(f"its sslmode is not one of {', '.join(SSL_MODES)}")
    return url


# The messages quote no part of the URL: a malformed one may have a password where a host or port belongs.


def _port_of(host: str) -> str:
    """The port a host of the URL's list names ("" for none), as asyncpg reads it."""
    if host.startswith("["):
        found = re.fullmatch(r"\[[^\]]+\](?::(.*))?", host)
        if found is None:
            raise ValueError("a host in [ ] is not an IPv6 address and port, such as [::1]:5432")
        return found.group(1) or ""
    return unquote(host.partition(":")[2])


def _check_port(port: str) -> None:
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError("its port is not a number from 1 to 65535")


def check_blob_store(url: str) -> str:
    """An object store's URL as far as it can be checked here (empty: files in the data dir; its form is
    checked where the store is made); else a ValueError saying what is wrong, without quoting it."""
    if not url:
        return url
    if not url.startswith("s3://"):
        raise ValueError(
            "it is not an s3:// URL: leave it empty for files in the data dir, or give s3://BUCKET"
        )
    if redacted(url) != url:
        raise ValueError(
            "it carries a user or password: S3 credentials come from AWS_ACCESS_KEY_ID and"
            " AWS_SECRET_ACCESS_KEY, never from the URL"
        )
    return url


def check_public_url(url: str) -> str:
    """The base URL clients are given, without a trailing slash (empty: the server's own address); else a
    ValueError saying what it must be."""
    if not url:
        return url
    rule = "it must be an http:// or https:// URL with a host, such as https://satchel.example.com"
    try:
        parts = urlsplit(url)
        port_ok = parts.port != 0  # reading it checks it: a port that is not a number raises
    except ValueError:
        raise ValueError(rule) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError(rule)
    if any(character.isspace() for character in url):
        raise ValueError(f"{rule}, and no spaces")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError(f"{rule}, and no query or fragment (? or #)")
    return url.rstrip("/")
