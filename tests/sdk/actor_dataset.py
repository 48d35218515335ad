"""An Actor pushing to a Satchel dataset through the Apify SDK for Python (force_cloud), as a user would.

Its 10 MB push goes out as the SDK sends it: brotli-compressed chunks of at most 9 MiB. Prints one JSON line
of what it saw, for tests/test_datasets_clients.py to check.
"""

import asyncio
import json
import sys

from apify import Actor


async def main(name: str) -> None:
    seen: dict[str, object] = {}
    async with Actor:
        dataset = await Actor.open_dataset(name=name, force_cloud=True)
        await dataset.push_data({"i": -1, "#debug": "hidden"})
        await dataset.push_data([{"i": i, "text": "z" * 1000} for i in range(10_000)])
        data = await dataset.get_data(limit=3)
        seen["first"] = [item["i"] for item in data.items]
        seen["total"] = data.total
        seen["desc"] = [item["i"] for item in (await dataset.get_data(desc=True, limit=2)).items]
        seen["iterated"] = len([item async for item in dataset.iterate_items(skip_hidden=True)])
        metadata = await dataset.get_metadata()
        seen["item_count"] = metadata.item_count
        seen["id"] = dataset.id
        unnamed = await Actor.open_dataset(force_cloud=True)
        await unnamed.push_data({"x": 1})
        seen["unnamed_items"] = (await unnamed.get_data()).items
        seen["unnamed_id"] = unnamed.id
        await unnamed.drop()
        print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
