"""Blobs as objects in an S3 bucket (AWS S3, MinIO, SeaweedFS and the like), through obstore.

obstore (Rust's object_store) streams a body of unknown length as a multipart upload holding one part in
memory, and aborts the upload when the body's iterator raises, so a failed put leaves nothing under its
name. It has no bucket operations: open() checks and creates the bucket with presigned requests instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import urllib.error
import urllib.request
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, urlsplit

import obstore
from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from satchel.errors import SatchelError, Unavailable
from satchel.settings import S3Settings
from satchel.storage.blobs.base import MARK_NAME, BlobMissing
from satchel.urls import redacted

if TYPE_CHECKING:
    from obstore import GetOptions
    from obstore.store import ClientConfig, RetryConfig, S3Config

log = logging.getLogger(__name__)
READ_CHUNK = 256 * 1024
DEFAULT_REGION = "us-east-1"
# S3's rule for bucket names: 3 to 63 lowercase letters, digits, dots and hyphens.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class S3Blobs:
    def __init__(self, bucket: str, *, endpoint: str, region: str, settings: S3Settings) -> None:
        if settings.prefix.startswith("/") or "//" in settings.prefix:
            raise ValueError(f"The S3 prefix {settings.prefix!r} must not start with / or contain //.")
        self.bucket = bucket
        self.endpoint = endpoint
        self.region = region
        self.prefix = settings.prefix
        self.part_bytes = settings.part_bytes
        self.timeout = settings.timeout_seconds
        self._made_bucket = False  # open() created the bucket (forget_made)
        wait = timedelta(seconds=settings.timeout_seconds)
        # Explicit values win over AWS_* variables; only the credentials come from the environment.
        config: S3Config = {"endpoint": endpoint, "region": region, "virtual_hosted_style_request": False}
        client: ClientConfig = {
            "allow_http": endpoint.startswith("http://"),
            "connect_timeout": wait,
            # A stalled answer fails after `wait`. The timer also runs while a request's body is sent, so
            # one part (part_bytes) must upload within it.
            "read_timeout": wait,
            # No cap on a whole request: a blob of several GiB read out to a slow client may take hours.
            "timeout": timedelta(days=365),
        }
        # obstore retries connection errors and 5xx answers with backoff, and tries no more once
        # `retry_timeout` has passed; but the sleep before a last try may begin just before then, and its
        # backoff grows to 15 s by default. Sleeps capped at a quarter of `wait`, and retries stopped after
        # the other three quarters, keep a store that refuses connections within `wait` overall.
        backoff_cap = wait / 4
        retry: RetryConfig = {
            "retry_timeout": wait - backoff_cap,
            "backoff": {
                "init_backoff": min(timedelta(milliseconds=100), backoff_cap),
                "max_backoff": backoff_cap,
            },
        }
        self._store = S3Store(bucket, config=config, client_options=client, retry_config=retry)

    @classmethod
    def from_url(cls, url: str, settings: S3Settings) -> S3Blobs:
        """An S3Blobs for `s3://BUCKET?endpoint=URL&region=R`; without an endpoint, AWS S3 itself."""
        form = "s3://BUCKET?endpoint=URL[&region=R]"
        shown = redacted(url)  # settings.py refuses a user or password, but none is ever quoted
        parts = urlsplit(url)
        if parts.scheme != "s3" or parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"The blob store {shown!r} is not of the form {form}.")
        bucket = parts.netloc
        if not _BUCKET_NAME.fullmatch(bucket):
            raise ValueError(
                f"The bucket name in {shown!r} is not a valid S3 bucket name "
                "(3 to 63 lowercase letters, digits, dots and hyphens)."
            )
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise ValueError(f"The query of the blob store {shown!r} is not of the form {form}.") from None
        unknown = sorted(set(query) - {"endpoint", "region"})
        repeated = sorted(key for key, values in query.items() if len(values) > 1)
        if unknown or repeated:
            raise ValueError(
                f"The blob store {shown!r} has unknown or repeated parameters {unknown + repeated}; "
                f"the form is {form}."
            )
        region = query.get("region", [DEFAULT_REGION])[0]
        if not region:
            raise ValueError(f"The region in the blob store {shown!r} is empty.")
        endpoint = query.get("endpoint", [f"https://s3.{region}.amazonaws.com"])[0].rstrip("/")
        target = urlsplit(endpoint)
        try:
            valid = target.scheme in ("http", "https") and target.hostname and target.port != 0
        except ValueError:  # a port that is not a number
            valid = False
        if not valid or target.query or target.fragment:
            raise ValueError(f"The endpoint in the blob store {shown!r} is not an http(s) URL.")
        return cls(bucket, endpoint=endpoint, region=region, settings=settings)

    async def open(self) -> None:
        """Check that the bucket answers; create it if it does not exist (SeaweedFS and MinIO allow it)."""
        status = await self._bucket_request("HEAD")
        if status == 404:
            created = await self._bucket_request("PUT", self._create_bucket_body())
            self._made_bucket = created == 200
            # Another node may have created it meanwhile; what counts is that it is there now.
            status = await self._bucket_request("HEAD")
            if status == 404:
                raise SatchelError(
                    f"The bucket {self.bucket} does not exist at {self.endpoint} and could not be created "
                    f"(HTTP {created}); create it, or give the credentials the right to."
                )
        if status in (401, 403):
            raise self._refused()
        if status >= 500:
            raise self._unavailable()
        if status != 200:
            raise SatchelError(
                f"The object store at {self.endpoint} answered HTTP {status} for the bucket {self.bucket}."
            )

    async def forget_made(self) -> None:
        """Delete the bucket open() created. S3 refuses to delete a bucket that holds anything, so whatever
        was written meanwhile (by this process or another that took the same name) stays, and so does it."""
        if self._made_bucket:
            self._made_bucket = False
            with contextlib.suppress(SatchelError):
                await self._bucket_request("DELETE")

    async def close(self) -> None:
        # obstore's worker threads hand each result back through the event loop. If the interpreter exits
        # while one is still doing so, the process aborts: give them a moment to finish first.
        await asyncio.sleep(0.01)

    def local_path(self, name: str) -> Path | None:
        return None

    def _path(self, name: str) -> str:
        return self.prefix + name

    async def put(self, name: str, chunks: AsyncIterable[bytes]) -> int:
        source = aiter(chunks)
        head: deque[bytes] = deque()
        size = 0
        async for chunk in source:
            head.append(chunk)
            size += len(chunk)
            if size > self.part_bytes:
                break
        else:
            # One part or less: a single PUT, not the three requests of a multipart upload.
            body = b"".join(head)
            head.clear()
            try:
                await obstore.put_async(self._store, self._path(name), body, use_multipart=False)
            except Exception as exc:
                raise self._failure(exc) from exc
            return size

        # obstore calls this iterator; an error it raises must reach our caller as it is (TooLarge).
        raised: list[BaseException] = []

        async def rest() -> AsyncGenerator[bytes, None]:
            nonlocal size
            while head:
                yield head.popleft()
            try:
                async for chunk in source:
                    size += len(chunk)
                    yield chunk
            except Exception as exc:
                raised.append(exc)
                raise

        try:
            async with aclosing(rest()) as body_chunks:
                # One upload at a time keeps a single part in memory; obstore aborts the upload on failure.
                await obstore.put_async(
                    self._store,
                    self._path(name),
                    body_chunks,
                    use_multipart=True,
                    chunk_size=self.part_bytes,
                    max_concurrency=1,
                )
        except Exception as exc:
            if raised and exc is raised[0]:
                raise
            raise self._failure(exc) from exc
        return size

    async def read(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if end is not None and end <= start:
            return  # S3 refuses an empty range; there is nothing to read
        # A ranged GET when only part is wanted: S3 sends those bytes alone.
        options: GetOptions = {}
        if end is not None:
            options["range"] = (start, end)
        elif start:
            options["range"] = {"offset": start}
        try:
            result = await obstore.get_async(self._store, self._path(name), options=options)
        except FileNotFoundError as exc:  # obstore's "not found", for a missing key
            raise BlobMissing(name) from exc
        except Exception as exc:
            raise self._failure(exc) from exc
        stream = result.stream(min_chunk_size=READ_CHUNK)
        while True:
            try:
                chunk = await anext(stream)
            except StopAsyncIteration:
                return
            except Exception as exc:
                raise self._failure(exc) from exc
            yield chunk

    async def delete(self, names: list[str]) -> None:
        if not names:
            return
        try:
            # S3's DeleteObjects, 1000 names a request; a name already gone counts as deleted.
            await obstore.delete_async(self._store, [self._path(name) for name in names])
        except Exception as exc:
            raise self._failure(exc) from exc

    async def mark(self) -> str | None:
        try:
            result = await obstore.get_async(self._store, self._path(MARK_NAME))
            body = await result.bytes_async()
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._failure(exc) from exc
        return bytes(body).decode(errors="replace").strip()

    async def write_mark(self, mark: str) -> None:
        try:
            await obstore.put_async(
                self._store, self._path(MARK_NAME), f"{mark}\n".encode(), use_multipart=False
            )
        except Exception as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: Exception) -> SatchelError:
        """What an obstore error means to a caller: the store is down, or it refuses the credentials."""
        # The caller is told only that the store failed; the operator reads what it said here.
        cause = str(exc).strip().splitlines()
        said = cause[0][:500] if cause else type(exc).__name__
        log.warning("object store %s failed: %s", self.endpoint, said)
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
            return self._refused()
        return self._unavailable()

    def _unavailable(self) -> Unavailable:
        return Unavailable(f"The object store at {self.endpoint} does not answer; try again.")

    def _refused(self) -> SatchelError:
        return SatchelError(
            f"The object store at {self.endpoint} refuses access to the bucket {self.bucket}; "
            "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        )

    def _create_bucket_body(self) -> bytes:
        if self.region == DEFAULT_REGION:
            return b""
        # Outside us-east-1, AWS wants the region named in the request too.
        return (
            '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<LocationConstraint>{self.region}</LocationConstraint></CreateBucketConfiguration>"
        ).encode()

    async def _bucket_request(
        self, method: Literal["HEAD", "PUT", "DELETE"], body: bytes | None = None
    ) -> int:
        """HEAD, PUT or DELETE on the bucket itself (HeadBucket, CreateBucket, DeleteBucket), signed by
        obstore; the HTTP status."""
        try:
            # The bucket's own URL is the object path "" (path-style: ENDPOINT/BUCKET/).
            url = await obstore.sign_async(self._store, method, "", timedelta(minutes=5))
        except Exception as exc:
            # Without the variables obstore looks elsewhere (instance metadata), and that failed too.
            raise SatchelError(
                f"Found no AWS credentials for the object store at {self.endpoint}; "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
            ) from exc
        request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - from_url allows http(s) only

        def send() -> int:
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                exc.close()
                return exc.code

        try:
            return await asyncio.to_thread(send)
        except OSError as exc:  # refused, reset, timed out (URLError is an OSError)
            raise self._unavailable() from exc
