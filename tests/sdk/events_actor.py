"""An Actor for `satchel run` written with the Apify SDK for Python: it waits for the SDK to hand it a
SYSTEM_INFO event from the run's events socket and prints what Crawlee's autoscaling reads of it as one JSON
line (the CPU's used ratio and the memory used)."""

import asyncio
import json

from apify import Actor, Event


async def main() -> None:
    async with Actor:
        heard: asyncio.Future[dict[str, float]] = asyncio.get_running_loop().create_future()

        def on_system_info(data: object) -> None:
            if not heard.done():
                heard.set_result(
                    {
                        "used_ratio": data.cpu_info.used_ratio,  # type: ignore[attr-defined]
                        "current_size": data.memory_info.current_size.bytes,  # type: ignore[attr-defined]
                    }
                )

        Actor.on(Event.SYSTEM_INFO, on_system_info)
        print(json.dumps(await asyncio.wait_for(heard, 30)), flush=True)


asyncio.run(main())
