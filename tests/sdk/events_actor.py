"""An Actor for `satchel run` written with the Apify SDK for Python. It waits for the SDK to hand it a
SYSTEM_INFO event from the run's events socket and prints what Crawlee's autoscaling reads of it as one JSON
line (the CPU's used ratio and the memory used). With argv[1] "abort" it then says "listening" and waits for
the ABORTING event, prints "aborting" when its listener hears it, and ends."""

import asyncio
import json
import sys

from apify import Actor, Event


async def main() -> None:
    async with Actor:
        loop = asyncio.get_running_loop()
        heard: asyncio.Future[dict[str, float]] = loop.create_future()
        aborting: asyncio.Future[None] = loop.create_future()

        def on_system_info(data: object) -> None:
            if not heard.done():
                heard.set_result(
                    {
                        "used_ratio": data.cpu_info.used_ratio,  # type: ignore[attr-defined]
                        "current_size": data.memory_info.current_size.bytes,  # type: ignore[attr-defined]
                    }
                )

        def on_aborting(_data: object) -> None:
            if not aborting.done():
                aborting.set_result(None)

        Actor.on(Event.SYSTEM_INFO, on_system_info)
        Actor.on(Event.ABORTING, on_aborting)
        print(json.dumps(await asyncio.wait_for(heard, 30)), flush=True)
        if sys.argv[1:] == ["abort"]:
            print("listening", flush=True)
            await asyncio.wait_for(aborting, 60)
            print("aborting", flush=True)


asyncio.run(main())
