"""The Apify SDK for Python (Crawlee underneath) storing to Satchel, configured only by its environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import Server, every_engine

server = every_engine()

ACTOR = Path(__file__).parent / "sdk" / "actor_kvs.py"


def test_actor_uses_satchel_as_its_platform(server: Server, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "APIFY_TOKEN": server.token,
        "APIFY_API_BASE_URL": server.base_url,
        "APIFY_API_PUBLIC_BASE_URL": server.base_url,
        "CRAWLEE_STORAGE_DIR": str(
            tmp_path / "local-storage"
        ),  # must stay unused: storage is forced to Satchel
    }
    done = subprocess.run(
        [sys.executable, str(ACTOR), "sdk-store"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["json"] == {"a": 1, "text": "x" * 4000}
    assert seen["text"] == "plain"
    assert seen["bytes"] == [0, 1, 255]
    assert seen["keys"] == ["bytes", "json", "text"]
    assert seen["exists"] is True
    assert seen["deleted"] == "gone"
    assert seen["unnamed_value"] == "v"

    # What the Actor stored is in Satchel, under the name it asked for.
    with server.client() as http:
        store = http.get("/key-value-stores/~sdk-store").json()["data"]
        assert store["id"] == seen["store_id"]
        keys = [
            item["key"] for item in http.get(f"/key-value-stores/{store['id']}/keys").json()["data"]["items"]
        ]
        assert keys == ["bytes", "json"]
        assert http.get(f"/key-value-stores/{seen['unnamed_id']}").status_code == 404  # dropped
    assert seen["public_url"].startswith(f"{server.api}/key-value-stores/{store['id']}/records/text")
    assert not (tmp_path / "local-storage" / "key_value_stores" / "sdk-store").exists()
    assert httpx.get(seen["public_url"]).status_code == 404  # the record was deleted since
