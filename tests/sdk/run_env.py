"""A command for `satchel run` to start: it prints the environment it was given as one JSON line, copies
INPUT to OUTPUT in the run's key-value store through the API, then exits with the code it was asked for
(argv[1]), or with "wait", waits to be stopped (printing "waiting" first)."""

import json
import os
import sys
import time

import httpx

NAMES = (
    "APIFY_IS_AT_HOME", "APIFY_TOKEN", "APIFY_API_BASE_URL", "APIFY_API_PUBLIC_BASE_URL", "ACTOR_ID",
    "ACTOR_RUN_ID", "ACTOR_DEFAULT_KEY_VALUE_STORE_ID", "ACTOR_DEFAULT_DATASET_ID",
    "ACTOR_DEFAULT_REQUEST_QUEUE_ID", "APIFY_ACTOR_PRICING_INFO", "APIFY_CHARGED_ACTOR_EVENT_COUNTS",
)  # fmt: skip

env = {name: os.environ.get(name) for name in NAMES}
print(json.dumps(env), flush=True)
api = f"{env['APIFY_API_BASE_URL']}/v2/key-value-stores/{env['ACTOR_DEFAULT_KEY_VALUE_STORE_ID']}/records"
headers = {"authorization": f"Bearer {env['APIFY_TOKEN']}"}
got = httpx.get(f"{api}/INPUT", headers=headers)
value = got.json() if got.status_code == 200 else None
httpx.put(f"{api}/OUTPUT", headers=headers, json={"input": value}).raise_for_status()
if sys.argv[1] == "wait":
    print("waiting", flush=True)
    time.sleep(300)
sys.exit(int(sys.argv[1]))
