"""Every setting Satchel reads, from the environment (`SATCHEL_*`) or the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


class PostgresSettings(BaseModel):
    """The PostgreSQL engine's own settings (SATCHEL_POSTGRES__*)."""

    # Connections each server process keeps to the database.
    pool_min: int = Field(default=2, ge=1, le=100)
    pool_max: int = Field(default=10, ge=1, le=1000)
    # How long a query may wait for a connection or an answer before the request gets a 503.
    timeout_seconds: float = Field(default=10.0, gt=0)


class S3Settings(BaseModel):
    """The S3 blob store's own settings (SATCHEL_S3__*)."""

    # Prepended to every object's name, so one bucket can hold several deployments.
    prefix: str = "satchel/"
    # Parts of a multipart upload, and how much of a body is held in memory while it uploads.
    part_bytes: int = Field(default=8 * MIB, ge=5 * MIB, le=512 * MIB)
    timeout_seconds: float = Field(default=30.0, gt=0)


class Settings(BaseSettings):
    """Server settings. Each field is documented in the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="SATCHEL_", env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    data_dir: Path = Path("./satchel-data")
    workers: int = Field(default=1, ge=1, le=64)
    # How long a client may take to send a request's headers, counted from when its connection opens or its
    # previous answer ends: so also how long an idle kept-alive connection stays open (one clock for both).
    header_timeout_seconds: float = Field(default=10.0, ge=0.1, le=3600)
    # Longest wait for the next piece of a request body (API uploads, Console forms); past it the request is
    # answered 408 and its connection closed.
    body_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Most client connections one server process holds, as far as its open-file limit allows (two files
    # each). Near it, those waiting longest on their client (idle, or stalled mid-body) are closed first.
    max_connections: int = Field(default=10_000, ge=64, le=1_000_000)
    # The base URL clients see, used in recordPublicUrl, keysPublicUrl and Location headers.
    # Empty means http://{host}:{port}.
    public_url: str = ""
    # A token to use for the admin user instead of a generated one (kept in the data dir either way).
    token: str = ""
    admin_username: str = "admin"
    # Unnamed stores are deleted this many seconds after their last use (read, write or list).
    retention_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    # How often the retention sweeper looks for expired stores.
    sweep_interval_seconds: float = Field(default=300.0, gt=0)
    # Largest record body accepted, as sent (possibly compressed).
    max_record_bytes: int = Field(default=4 * GIB, ge=1)
    # Largest record body after decoding its Content-Encoding (the zip-bomb cap).
    max_decoded_bytes: int = Field(default=8 * GIB, ge=1)
    # Largest dataset push (POST .../items) after decoding its Content-Encoding: the clients send up to 9 MiB
    # (the SDK's chunks are 9,436,240 bytes), so 10 MiB leaves a margin; larger pushes get 413.
    max_items_payload_bytes: int = Field(default=10 * MIB, ge=1024)
    # Bodies up to this size live inside the SQLite file; larger ones are files in the blob folder.
    inline_max_bytes: int = Field(default=128 * KIB, ge=0, le=16 * MIB)
    # "process": an acknowledged write survives a crash of the server process (SQLite synchronous=NORMAL).
    # "power": it also survives power loss (synchronous=FULL and an fsync of every blob and its folder).
    durability: Literal["process", "power"] = "process"
    # Replaced or deleted blob files are unlinked this long after, so readers that just looked them up finish.
    blob_grace_seconds: float = Field(default=60.0, ge=0)
    # Rate limits, as the API reference states them; off is for benchmarks and trusted single-user setups.
    rate_limit: bool = True
    # Requests per second to one resource (a store, or a user's store collection).
    rate_limit_per_second: int = Field(default=30, ge=1)
    # Requests per second to one store's record endpoints (get, head, put, post, delete).
    rate_limit_records_per_second: int = Field(default=100, ge=1)
    # Requests per minute from one user (or, without a token, one IP address) across the whole API.
    rate_limit_global_per_minute: int = Field(default=250_000, ge=1)
    # How long a request over a per-store limit may wait for a free slot before a 429 (0: refuse at once).
    rate_limit_wait_seconds: float = Field(default=1.0, ge=0, le=30)
    # Where the counters live: memory:// (per server process) or redis://host:port to share them.
    rate_limit_storage: str = "memory://"
    # How long a Console sign-in lasts; signing out, or revoking the token it was made with, ends it sooner.
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 366)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Where metadata and small bodies live: empty for SQLite in the data dir, or a PostgreSQL URL
    # (postgresql://USER[:PASSWORD]@HOST:PORT/DB) for any number of nodes over one database.
    database: str = ""
    # Where large bodies live: empty for files in the data dir, or s3://BUCKET?endpoint=URL[&region=R]
    # (credentials from the standard AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY variables).
    blob_store: str = ""
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    s3: S3Settings = Field(default_factory=S3Settings)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):  # noqa: S104 - a listen address, not a bind
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"
