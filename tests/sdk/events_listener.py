"""A command for `satchel run` that hears the run's platform events on ACTOR_EVENTS_WEBSOCKET_URL, as the SDKs
do. It prints the first `systemInfo` event as one JSON line, then "listening", and then with argv[1]:
"end" exits; "abort" waits for `aborting`, prints "aborting" and exits 0; "ignore" sleeps through everything
until a signal ends it."""

import json
import os
import sys
import time

from websockets.sync.client import connect

with connect(os.environ["ACTOR_EVENTS_WEBSOCKET_URL"]) as socket:
    for message in socket:
        event = json.loads(message)
        if event["name"] == "systemInfo":
            print(json.dumps(event), flush=True)
            break
    print("listening", flush=True)
    if sys.argv[1] == "abort":
        for message in socket:
            if json.loads(message)["name"] == "aborting":
                print("aborting", flush=True)
                sys.exit(0)
    elif sys.argv[1] == "ignore":
        time.sleep(300)
