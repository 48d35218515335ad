"""The official JavaScript clients against a real server: runs the node test files in tests/js.

tests/js/kvs.test.mjs drives `apify-client` (npm) through every key-value store call it has;
tests/js/sdk.test.mjs drives the Apify SDK for JavaScript and Crawlee's KeyValueStore;
tests/js/datasets.test.mjs and tests/js/queues.test.mjs drive `apify-client` through its dataset and
request queue calls, and tests/js/runs.test.mjs through an Actor's runs (started, the last one read and
changed). All read SATCHEL_URL and SATCHEL_TOKEN. The npm packages are installed from
tests/js/package-lock.json with `npm ci` when tests/js/node_modules is missing; the test is skipped only
when node or npm is not on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Server, every_engine

server = every_engine()

JS_DIR = Path(__file__).parent / "js"
TEST_FILES = ("kvs.test.mjs", "sdk.test.mjs", "datasets.test.mjs", "queues.test.mjs", "runs.test.mjs")
INSTALL_TIMEOUT = 600
RUN_TIMEOUT = 240


def _tail(text: str, limit: int = 20_000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _ensure_installed(npm: str) -> None:
    marker = JS_DIR / "node_modules" / "apify-client" / "package.json"
    if marker.exists() and (JS_DIR / "node_modules" / "apify" / "package.json").exists():
        return
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    output = _tail(result.stdout + result.stderr)
    assert result.returncode == 0, f"npm ci failed ({result.returncode}):\n{output}"


@pytest.mark.timeout(INSTALL_TIMEOUT + RUN_TIMEOUT + 60)
def test_js_apify_client_and_sdk(server: Server, tmp_path: Path) -> None:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the JavaScript client checks")
    _ensure_installed(npm)

    env = {
        **os.environ,
        "SATCHEL_URL": server.base_url,
        "SATCHEL_TOKEN": server.token,
        "SATCHEL_ADMIN_USERNAME": "admin",
        "NO_COLOR": "1",
        "TMPDIR": str(tmp_path),
    }
    # The SDK and the client pick these up; none must point the run anywhere but this server.
    for name in ("APIFY_IS_AT_HOME", "APIFY_API_BASE_URL", "APIFY_TOKEN", "HTTP_PROXY", "http_proxy"):
        env.pop(name, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"

    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", *(str(JS_DIR / name) for name in TEST_FILES)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"node --test failed ({result.returncode}):\n{_tail(output)}"
