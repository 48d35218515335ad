"""Routes: the raw request path, split into segments and percent-decoded one by one.

Routing on the raw path (not the decoded one) keeps an encoded `%2F` inside a record key in its segment, so it
is judged as a key (and refused as one) instead of changing which endpoint is called.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import unquote_to_bytes

from starlette.responses import Response

from satchel.api import openapi, records, stores, users
from satchel.api.http import Call
from satchel.errors import InvalidRequest, NotFound

Handler = Callable[[Call], Awaitable[Response]]
Methods = dict[str, Handler]

STORE_COLLECTION: Methods = {"GET": stores.list_stores, "POST": stores.create_store}
STORE_OBJECT: Methods = {"GET": stores.get_store, "PUT": stores.update_store, "DELETE": stores.delete_store}
KEYS: Methods = {"GET": stores.list_keys}
RECORDS: Methods = {"GET": records.download_records}
RECORD: Methods = {
    "GET": records.get_record,
    "HEAD": records.head_record,
    "PUT": records.put_record,
    "POST": records.put_record,
    "DELETE": records.delete_record,
}
ROTATE: Methods = {"POST": stores.rotate_signing_key}
SHARES: Methods = {"GET": stores.list_shares}
SHARE: Methods = {"PUT": stores.put_share, "DELETE": stores.delete_share}
ME: Methods = {"GET": users.me}
USER: Methods = {"GET": users.public}
OPENAPI: Methods = {"GET": openapi.document}
ROTATE_PATH = "rotate-url-signing-secret-key"
STORE_CHILDREN = {"keys": KEYS, "records": RECORDS, "shares": SHARES, ROTATE_PATH: ROTATE}
# Children of a store that name one item: a record by key, a share by username (carried as the key).
STORE_ITEMS = {"records": RECORD, "shares": SHARE}


# Every endpoint by its OpenAPI path template; resolve() below is what serves them, this is what the
# published document (api/openapi.py) is checked against.
ROUTES: dict[str, Methods] = {
    "/v2/key-value-stores": STORE_COLLECTION,
    "/v2/key-value-stores/{storeId}": STORE_OBJECT,
    "/v2/key-value-stores/{storeId}/keys": KEYS,
    "/v2/key-value-stores/{storeId}/records": RECORDS,
    "/v2/key-value-stores/{storeId}/records/{recordKey}": RECORD,
    "/v2/key-value-stores/{storeId}/shares": SHARES,
    "/v2/key-value-stores/{storeId}/shares/{username}": SHARE,
    f"/v2/key-value-stores/{{storeId}}/{ROTATE_PATH}": ROTATE,
    "/v2/users/me": ME,
    "/v2/users/{userId}": USER,
    "/v2/openapi.json": OPENAPI,
}


class PageNotFound(NotFound):
    type = "page-not-found"


def _segment(raw: str) -> str:
    if "%" not in raw:
        return raw
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The request path is not valid UTF-8 once percent-decoded.") from exc


def resolve(raw_path: bytes) -> tuple[Methods, str, str]:
    """The methods of the endpoint a path names, with its store reference and record key."""
    try:
        path = raw_path.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The request path must be ASCII (percent-encode other characters).") from exc
    parts = path.split("/")
    # parts[0] is the empty string before the leading slash; one trailing slash is forgiven.
    if len(parts) > 2 and parts[-1] == "":
        parts.pop()
    n = len(parts)
    if n >= 3 and parts[1] == "v2":
        if parts[2] == "openapi.json" and n == 3:
            return OPENAPI, "", ""
        if parts[2] == "key-value-stores":
            if n == 3:
                return STORE_COLLECTION, "", ""
            store_ref = _segment(parts[3])
            if n == 4:
                return STORE_OBJECT, store_ref, ""
            children = STORE_CHILDREN.get(parts[4])
            if children is not None and n == 5:
                return children, store_ref, ""
            items = STORE_ITEMS.get(parts[4])
            if items is not None and n == 6:
                return items, store_ref, _segment(parts[5])
        elif parts[2] == "users" and n == 4:
            return (ME, "", "") if parts[3] == "me" else (USER, "", _segment(parts[3]))
    raise PageNotFound(f"There is no API endpoint at {path[:200]}.")
