"""An Actor written as a user would, storing to Satchel through the Apify SDK for Python (force_cloud).

Prints one JSON line of what it saw, for tests/test_python_sdk.py to check.
"""

import asyncio
import json
import sys

from apify import Actor


async def main(name: str) -> None:
    seen: dict[str, object] = {}
    async with Actor:
        kvs = await Actor.open_key_value_store(name=name, force_cloud=True)
        await kvs.set_value("json", {"a": 1, "text": "x" * 4000})  # large enough for the client to compress
        await kvs.set_value("text", "plain", content_type="text/plain")
        await kvs.set_value("bytes", b"\x00\x01\xff", content_type="application/octet-stream")
        seen["json"] = await kvs.get_value("json")
        seen["text"] = await kvs.get_value("text")
        seen["bytes"] = list(await kvs.get_value("bytes"))
        seen["keys"] = [key.key async for key in kvs.iterate_keys()]
        seen["exists"] = await kvs.record_exists("text")
        seen["public_url"] = await kvs.get_public_url("text")
        await kvs.delete_value("text")
        seen["deleted"] = await kvs.get_value("text", "gone")
        seen["store_id"] = kvs.id
        unnamed = await Actor.open_key_value_store(force_cloud=True)
        await unnamed.set_value("k", "v")
        seen["unnamed_value"] = await unnamed.get_value("k")
        seen["unnamed_id"] = unnamed.id
        await unnamed.drop()
        print(json.dumps(seen), flush=True)  # inside: leaving the Actor context ends the process


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
