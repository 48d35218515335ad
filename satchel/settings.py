"""Every setting Satchel reads: from the command line, the environment (`SATCHEL_*`), or a TOML file.

Each field's docstring is its documentation: docs/settings.md is generated from this model
(`python -m satchel.settings_doc`), and a test fails when the two differ.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from satchel.urls import check_blob_store, check_database, check_public_url, redacted

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
# Names the TOML file whose settings apply below the command line's and the environment's.
CONFIG_VARIABLE = "SATCHEL_CONFIG"
MIN_TOKEN = 20
ADMIN_TOKEN = re.compile(rf"[A-Za-z0-9_.~-]{{{MIN_TOKEN},200}}")
# Settings whose value may hold a password: an error shows them redacted. The admin token is never shown.
URL_SETTINGS = ("database", "blob_store")


class PostgresSettings(BaseModel):
    """The PostgreSQL engine's own settings (SATCHEL_POSTGRES__*, or a `[postgres]` table)."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    pool_min: int = Field(default=2, ge=1, le=100)
    """Connections each server process keeps open to the database."""
    pool_max: int = Field(default=10, ge=1, le=1000)
    """Most connections each server process opens to the database."""
    timeout_seconds: float = Field(default=10.0, gt=0)
    """How long a query may wait for a connection or an answer before the request gets a 503."""


class S3Settings(BaseModel):
    """The S3 blob store's own settings (SATCHEL_S3__*, or an `[s3]` table)."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    prefix: str = "satchel/"
    """Prepended to every object's name, so one bucket can hold several deployments."""
    part_bytes: int = Field(default=8 * MIB, ge=5 * MIB, le=512 * MIB)
    """Size of a multipart upload's parts (5 MiB to 512 MiB); also the memory one upload holds."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """How long a request to the object store may take before the request gets a 503."""


class Settings(BaseSettings):
    """Server settings: command-line flags first, then SATCHEL_* variables, then the config file, then the
    defaults."""

    model_config = SettingsConfigDict(
        env_prefix="SATCHEL_", env_nested_delimiter="__", extra="ignore", use_attribute_docstrings=True
    )

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = Field(default=8765, ge=0, le=65535)
    """Port to listen on."""
    data_dir: Path = Path("./satchel-data")
    """The SQLite file, the blob folder and the admin token."""
    workers: int = Field(default=1, ge=1, le=64)
    """Server processes (on SQLite one more process writes for them all; about one per core)."""
    write_process_timeout_seconds: float = Field(default=30.0, ge=1, le=3600)
    """With several workers on SQLite: how long a worker waits for the process that writes for them all to
    answer a change (that process stopped, say, or held by a disk that hangs) before the request gets a 503
    saying the change may or may not have been stored: one already in that process's hands may still be,
    whole, once it runs again. Until that process answers again, the worker's next changes get a 503 at once,
    not stored."""
    header_timeout_seconds: float = Field(default=10.0, ge=0.1, le=3600)
    """How long a client may take to send a request's headers, counted from when its connection opens or its
    previous answer ends: so also how long an idle kept-alive connection stays open (one clock for both)."""
    body_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    """Longest wait for the next piece of a request body (API uploads, Console forms); past it the request
    is answered 408 and its connection closed."""
    log_follow_idle_seconds: float = Field(default=300.0, gt=0, le=86400)
    """How long a run's log followed with `stream=1` may go with nothing added before the answer ends (it
    ends when the run does, too): a `satchel run` killed outright leaves its run RUNNING, with nobody to end
    it."""
    max_connections: int = Field(default=10_000, ge=64, le=1_000_000)
    """Most client connections one server process holds, as far as its open-file limit allows (two files
    each). Near it, those waiting longest on their client (idle, or stalled mid-body) are closed first."""
    shutdown_timeout_seconds: int = Field(default=60, ge=1, le=3600)
    """On SIGTERM or Ctrl-C the server stops accepting connections and finishes the requests it has begun
    to read (uploads included); connections not yet accepted are refused, and nothing on them was stored. A
    worker process still busy after this long is killed."""
    public_url: str = ""
    """The base URL clients see (http:// or https://, a host, perhaps a path; no query), used in
    recordPublicUrl, keysPublicUrl and Location headers. Empty means http://{host}:{port}."""
    forwarded_allow_ips: str = ""
    """The proxies in front, whose X-Forwarded-For and X-Forwarded-Proto are believed: comma-separated
    addresses or networks (10.0.0.5, 10.0.0.0/8), or * for any. A request from one of them counts against
    the client's address in the per-IP limits and failed Console sign-ins, and gets the Console's Secure
    cookie when the proxy says https. Empty: those headers are ignored."""
    token: str = ""
    """A token to use for the admin user instead of a generated one (kept in the data dir either way): 20 to
    200 letters, digits and - _ . ~."""
    admin_username: str = "admin"
    """The admin user made on first start."""
    retention_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    """Unnamed stores are deleted this many seconds after their last use (read, write or list)."""
    sweep_interval_seconds: float = Field(default=300.0, gt=0)
    """How often the retention sweeper looks for expired stores."""
    max_record_bytes: int = Field(default=4 * GIB, ge=1)
    """Largest record body accepted, as sent (possibly compressed); larger: 413."""
    max_decoded_bytes: int = Field(default=8 * GIB, ge=1)
    """Largest record body after decoding its Content-Encoding (the zip-bomb cap)."""
    max_items_payload_bytes: int = Field(default=10 * MIB, ge=1024)
    """Largest dataset push (POST .../items) after decoding its Content-Encoding: the clients send up to
    9 MiB (the SDK's chunks are 9,436,240 bytes), so 10 MiB leaves a margin; larger pushes get 413."""
    inline_max_bytes: int = Field(default=128 * KIB, ge=0, le=16 * MIB)
    """Bodies up to this size, as stored (compressed, if they came with a Content-Encoding), live inside the
    database (SQLite or PostgreSQL); larger ones in the blob store (files or S3)."""
    record_cache_mb: int = Field(default=128, ge=0, le=1024 * 1024)
    """Memory each server process may use to keep records of up to 64 KiB that live inside the database, so
    that reading them again needs no query (0: off). Used with the embedded SQLite engine only: every write on
    the machine invalidates its record at once, which across PostgreSQL nodes would cost a round trip."""
    durability: Literal["process", "power"] = "process"
    """"process": an acknowledged write survives a crash of the server process (SQLite synchronous=NORMAL);
    "power": it also survives power loss (synchronous=FULL and an fsync of every blob and its folder). For
    SQLite and blob files; PostgreSQL and S3 keep their own guarantees."""
    blob_grace_seconds: float = Field(default=60.0, ge=0)
    """Replaced or deleted blobs are deleted this long after, so readers that just looked them up finish."""
    rate_limit: bool = True
    """Enforce the rate limits the API reference states; off is for benchmarks and trusted single-user
    setups."""
    rate_limit_per_second: int = Field(default=30, ge=1)
    """Requests per second to one resource (a store, or a user's store collection)."""
    rate_limit_records_per_second: int = Field(default=100, ge=1)
    """Requests per second to one store's record endpoints (get, head, put, post, delete), and to one
    dataset's item pushes and one request queue's single-request endpoints (add, get, update, delete), as the
    reference ranks them."""
    rate_limit_global_per_minute: int = Field(default=250_000, ge=1)
    """Requests per minute from one user (or, without a valid token, one IP address) across the whole API."""
    rate_limit_wait_seconds: float = Field(default=1.0, ge=0, le=30)
    """How long a request over a per-store limit may wait for a free slot before a 429 (0: refuse at
    once)."""
    rate_limit_storage: str = "memory://"
    """Where the counters live: memory:// (per server process) or redis://host:port to share them."""
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 366)
    """How long a Console sign-in lasts; signing out, or revoking the token it was made with, ends it
    sooner."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """The least severe messages logged: debug, info, warning or error."""
    log_format: Literal["text", "json"] = "text"
    """"text": lines for people; "json": one JSON object a line, for log collectors."""
    request_log: bool = False
    """Log one line per request (at info): method, route, path, status, duration, bytes, request id, user.
    Off by default: on the record hot path it costs about a tenth of a worker's throughput."""
    metrics: bool = True
    """Count requests, bytes and latencies for Prometheus at /metrics (off: /metrics answers 404, and a small
    GET costs about 2% less)."""
    metrics_admin_only: bool = False
    """/metrics asks for the admin's token (off: open to anyone who reaches the server, as /health is)."""
    database: str = ""
    """Where metadata and small bodies live: empty for SQLite in the data dir, or a PostgreSQL URL
    (postgresql://USER[:PASSWORD]@HOST:PORT/DB) for any number of nodes over one database."""
    blob_store: str = ""
    """Where large bodies live: empty for files in the data dir, or s3://BUCKET?endpoint=URL[&region=R]
    (credentials from the standard AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY variables)."""
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    """The PostgreSQL engine's block."""
    s3: S3Settings = Field(default_factory=S3Settings)
    """The S3 blob store's block."""

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        """Addresses and networks only: a typo must not leave the headers trusted from nowhere, silently."""
        value = value.strip()
        if value in ("", "*"):
            return value
        found = []
        for item in (part.strip() for part in value.split(",")):
            try:
                # In canonical form: granian's check takes 10.0.0.1/8 for a name, never matched.
                found.append(
                    str(
                        ipaddress.ip_network(item, strict=False)
                        if "/" in item
                        else ipaddress.ip_address(item)
                    )
                )
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (such as 10.0.0.5 or 10.0.0.0/8)"
                ) from None
        return ",".join(found)

    @field_validator("token")
    @classmethod
    def _strong_token(cls, value: str) -> str:
        """The admin's token opens everything, so one easy to guess is refused rather than taken; and it
        travels in headers and query strings, so it holds only characters that need no escaping there."""
        if value and ADMIN_TOKEN.fullmatch(value) is None:
            bad = next((c for c in value if ADMIN_TOKEN.fullmatch(c * MIN_TOKEN) is None), None)
            raise ValueError(
                f"the admin token must be {MIN_TOKEN} to 200 letters, digits and - _ . ~ "
                f"({f'it holds {bad!r}' if bad else f'it is {len(value)} characters'}); "
                "leave it unset for a generated one"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        """Every URL the server hands out starts with it: `notaurl` made them all `notaurl/v2/...`."""
        return check_public_url(value)

    @field_validator("database")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """Checked here, so that every command and `serve` say what is wrong with it before connecting."""
        return check_database(value)

    @field_validator("blob_store")
    @classmethod
    def _blob_store_url(cls, value: str) -> str:
        return check_blob_store(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get(CONFIG_VARIABLE)
        if not path:
            return (init_settings, env_settings)
        return (init_settings, env_settings, InitSettingsSource(settings_cls, read_config(Path(path))))

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):  # noqa: S104 - a listen address, not a bind
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"


class ConfigFileError(ValueError):
    """The config file cannot be read, or names a setting Satchel does not have, or a setting's value (from
    it, a variable or a flag) is not one Satchel can use."""


def load(**overrides: Any) -> Settings:
    """Settings from the environment and config file, with the given values (None: not given; the command
    line's flags) on top; a value Satchel cannot use, or a config file it cannot read, is a ConfigFileError
    saying which, in plain lines."""
    flags = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**flags)
    except ValidationError as error:
        raise ConfigFileError(invalid_settings(error, flags)) from error


def invalid_settings(error: ValidationError, flags: dict[str, Any]) -> str:
    """What a ValidationError of Settings says, in a line per setting: its name, where the value came from
    (the flag, the variable or the config file), the rule and the value given."""
    lines = []
    for problem in error.errors(include_url=False):
        path = [str(part) for part in problem["loc"]]
        value = problem["input"]
        if path[0] in URL_SETTINGS and isinstance(value, str):
            value = redacted(value)
        shown = not (path[0] == "token" or isinstance(value, dict))  # error lines end up in logs
        given = f" (got {value!r})" if shown else ""
        rule = problem["msg"].removeprefix("Value error, ")  # a validator's own words, as written
        rule = rule[:1].lower() + rule[1:] if problem["type"] != "value_error" else rule
        lines.append(f"Setting {'.'.join(path)} ({_source(path, flags)}): {rule.rstrip('.')}{given}.")
    return "\n".join(lines)


def _source(path: list[str], flags: dict[str, Any]) -> str:
    """Where a setting's value came from: the first of its flag, its variable (or its block's, which may hold
    the block as JSON) and the config file that gives it, as Settings reads them."""
    if _holds(flags, path):
        return "--" + "-".join(path).replace("_", "-")
    variables = {name.upper() for name in os.environ}  # the names are read in any case
    for end in range(len(path), 0, -1):
        variable = "SATCHEL_" + "__".join(path[:end]).upper()
        if variable in variables:
            return variable
    config = os.environ.get(CONFIG_VARIABLE)
    if config and _holds(read_config(Path(config)), path):
        return f"`{'.'.join(path)}` in the config file {config}"
    return f"SATCHEL_{'__'.join(path).upper()} or the config file"


def _holds(values: Any, path: list[str]) -> bool:
    for part in path:
        if not isinstance(values, dict) or part not in values:
            return False
        values = values[part]
    return True


def read_config(path: Path) -> dict[str, Any]:
    """A TOML config file's settings, with names checked: a misspelt setting is an error, not ignored."""
    try:
        values = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigFileError(f"The config file {path} cannot be read: {error.strerror or error}.") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigFileError(f"The config file {path} is not valid TOML: {error}.") from error
    unknown = []
    for name, value in values.items():
        field = Settings.model_fields.get(name)
        block = field.annotation if field else None
        if field is None:
            unknown.append(name)
        elif isinstance(block, type) and issubclass(block, BaseModel) and isinstance(value, dict):
            unknown += [f"{name}.{inner}" for inner in value if inner not in block.model_fields]
    if unknown:
        raise ConfigFileError(f"The config file {path} has unknown settings: {', '.join(unknown)}.")
    return values
