"""The API tab: a store's endpoints, and lines that call them, ready to paste: curl and both apify-clients.

The lines use the base URL the page was asked for (what the browser reached, so what a program on the same
network reaches too) and name the token by a variable, never the token itself: a page is not the place for a
secret, and the variable is what the README and `satchel serve` tell people to set.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from satchel.storage import StoreRow

TOKEN_VARIABLE = "SATCHEL_TOKEN"  # noqa: S105 - the name of a variable, not a token
EXAMPLE_KEY = "my-record"


def base_url(request: Request) -> str:
    """Where this server was reached, without a trailing slash (the API is under /v2)."""
    return str(request.base_url).rstrip("/")


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    url: str
    does: str


@dataclass(frozen=True, slots=True)
class Snippet:
    id: str  # in element ids: "snippet-curl"
    label: str
    code: str


@dataclass(frozen=True, slots=True)
class StoreSnippets:
    endpoints: list[Endpoint]
    snippets: list[Snippet]


def key_value_store(base: str, store: StoreRow) -> StoreSnippets:
    api = f"{base}/v2/key-value-stores/{store.id}"
    record = f"{api}/records/{EXAMPLE_KEY}"
    endpoints = [
        Endpoint("GET", api, "The store: its name, access and stats."),
        Endpoint("PUT", api, "Rename it, or change its general access."),
        Endpoint("DELETE", api, "Delete it with all its records."),
        Endpoint("GET", f"{api}/keys", "List its keys (exclusiveStartKey, limit, prefix)."),
        Endpoint("GET", f"{api}/records", "Download every record as a ZIP archive."),
        Endpoint("GET", f"{api}/records/{{key}}", "Read a record."),
        Endpoint("PUT", f"{api}/records/{{key}}", "Write a record (its body, with its Content-Type)."),
        Endpoint("DELETE", f"{api}/records/{{key}}", "Delete a record."),
    ]
    auth = f'-H "Authorization: Bearer ${TOKEN_VARIABLE}"'
    curl = "\n".join(
        [
            # A comment, not an export: pasted where the variable is set, the block runs as it is.
            f"# ${TOKEN_VARIABLE}: an API token (Account page, or `satchel tokens create`)",
            f'curl {auth} "{api}/keys"',
            f"curl -X PUT {auth} -H 'Content-Type: application/json' \\",
            f'  --data \'{{"hello": "world"}}\' "{record}"',
            f'curl {auth} "{record}"',
        ]
    )
    python = "\n".join(
        [
            "# pip install apify-client",
            "import os",
            "from apify_client import ApifyClient",
            "",
            f'client = ApifyClient(os.environ["{TOKEN_VARIABLE}"], api_url="{base}")',
            f'store = client.key_value_store("{store.id}")',
            f'store.set_record("{EXAMPLE_KEY}", {{"hello": "world"}})',
            f'record = store.get_record("{EXAMPLE_KEY}")  # key, value and content type, or None',
            'print(record["value"] if record else None)',
        ]
    )
    javascript = "\n".join(
        [
            "// npm install apify-client; run as an ES module (a .mjs file), for the top-level await",
            "import { ApifyClient } from 'apify-client';",
            "",
            f"const client = new ApifyClient({{ token: process.env.{TOKEN_VARIABLE}, baseUrl: '{base}' }});",
            f"const store = client.keyValueStore('{store.id}');",
            f"await store.setRecord({{ key: '{EXAMPLE_KEY}', value: {{ hello: 'world' }} }});",
            f"console.log((await store.getRecord('{EXAMPLE_KEY}'))?.value);",
            "console.log((await store.listKeys()).items.map((item) => item.key));",
        ]
    )
    return StoreSnippets(
        endpoints,
        [
            Snippet("curl", "curl", curl),
            Snippet("python", "Python (apify-client)", python),
            Snippet("javascript", "JavaScript (apify-client)", javascript),
        ],
    )
