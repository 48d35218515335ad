"""Routes: the one table of every endpoint, and the dispatcher made from it.

ROUTES below is the only list of endpoints: the dispatcher, the OpenAPI document (api/spec/document.py) and
the README check (tests/test_docs.py) are all made from it. Adding an endpoint is one row here, its handler,
and its OpenAPI operation in api/spec/.

Dispatch routes the raw request path (not the decoded one), split into segments and percent-decoded one by
one: an encoded `%2F` inside a record key stays in its segment, so it is judged as a key (and refused as one)
instead of changing which endpoint is called. The table is compiled once into a trie of segments; a request
walks it with one dict lookup per segment, no regex, and allocates nothing but the dict of its path parameters
(the record GET is the benchmarked hot path).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.responses import Response

from satchel.api import datasets, queues, records, runs, shares, stores, users
from satchel.api.chained import actors_aliases, chained_routes
from satchel.api.http import Call
from satchel.api.spec import datasets as dataset_specs
from satchel.api.spec import document, kvs
from satchel.api.spec import queues as queue_specs
from satchel.api.spec import runs as run_specs
from satchel.api.spec import users as user_specs
from satchel.errors import InvalidRequest, NotFound
from satchel.storage import StorageKind

Handler = Callable[[Call], Awaitable[Response]]
PARAM = re.compile(r"^\{([A-Za-z][A-Za-z0-9]*)\}$")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method of a route: the handler that answers it and its OpenAPI operation object."""

    handler: Handler
    spec: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Route:
    """An endpoint's path template (OpenAPI syntax) with its methods.

    record: requests count under the per-record rate limit rather than the per-resource one.
    record_methods: the methods that count under it on a route whose other methods do not. The hosted API
    ranks pushing items and a request queue's request CRUD with a record's CRUD: a crawl makes one or more of
    each per page, so at the per-resource limit it would be held to a few pages a second.
    storage: the path parameter that names a storage, and its kind; requests are counted per storage, however
    its reference is spelled.
    derived_from: for a route made from others (api/chained.py), the path it is documented under; it answers
    exactly as the routes it was made from.
    """

    template: str
    methods: dict[str, Endpoint]
    record: bool = False
    record_methods: frozenset[str] = frozenset()
    storage: tuple[str, StorageKind] | None = None
    derived_from: str = ""
    params: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = tuple(m[1] for s in self.template.split("/") if (m := PARAM.match(s)))
        object.__setattr__(self, "params", names)

    def counts_as_record(self, method: str) -> bool:
        """Whether a request with this method counts under the per-record rate limit."""
        return self.record or method in self.record_methods


def methods(**endpoints: tuple[Handler, dict[str, Any]]) -> dict[str, Endpoint]:
    """A route's methods, written `GET=(handler, operation)`."""
    return {name: Endpoint(handler, operation) for name, (handler, operation) in endpoints.items()}


def share_routes(
    base: str, storage: tuple[str, StorageKind], sharing: shares.Sharing, noun: str, prefix: str
) -> list[Route]:
    """`/shares` and `/shares/{username}` below a storage of another kind than key-value stores."""
    listing, put, delete = kvs.share_operations(noun, prefix)
    return [
        Route(f"{base}/shares", methods(GET=(sharing.list, listing)), storage=storage),
        Route(
            f"{base}/shares/{{username}}",
            methods(PUT=(sharing.put, put), DELETE=(sharing.delete, delete)),
            storage=storage,
        ),
    ]


KVS_ID = ("storeId", StorageKind.KEY_VALUE_STORE)
QUEUE_ID = ("queueId", StorageKind.REQUEST_QUEUE)
DATASET_ID = ("datasetId", StorageKind.DATASET)

ROUTES: list[Route] = [
    Route(
        "/v2/key-value-stores",
        methods(
            GET=(stores.list_stores, kvs.LIST_STORES), POST=(stores.create_store, kvs.GET_OR_CREATE_STORE)
        ),
    ),
    Route(
        "/v2/key-value-stores/{storeId}",
        methods(
            GET=(stores.get_store, kvs.GET_STORE),
            PUT=(stores.update_store, kvs.UPDATE_STORE),
            DELETE=(stores.delete_store, kvs.DELETE_STORE),
        ),
        storage=KVS_ID,
    ),
    Route(
        "/v2/key-value-stores/{storeId}/keys", methods(GET=(stores.list_keys, kvs.LIST_KEYS)), storage=KVS_ID
    ),
    Route(
        "/v2/key-value-stores/{storeId}/records",
        methods(GET=(records.download_records, kvs.DOWNLOAD_RECORDS)),
        storage=KVS_ID,
    ),
    Route(
        "/v2/key-value-stores/{storeId}/records/{recordKey}",
        methods(
            GET=(records.get_record, kvs.GET_RECORD),
            HEAD=(records.head_record, kvs.HEAD_RECORD),
            PUT=(records.put_record, kvs.PUT_RECORD),
            POST=(records.put_record, kvs.POST_RECORD),
            DELETE=(records.delete_record, kvs.DELETE_RECORD),
        ),
        record=True,
        storage=KVS_ID,
    ),
    Route(
        "/v2/key-value-stores/{storeId}/shares",
        methods(GET=(shares.KEY_VALUE_STORES.list, kvs.LIST_SHARES)),
        storage=KVS_ID,
    ),
    Route(
        "/v2/key-value-stores/{storeId}/shares/{username}",
        methods(
            PUT=(shares.KEY_VALUE_STORES.put, kvs.PUT_SHARE),
            DELETE=(shares.KEY_VALUE_STORES.delete, kvs.DELETE_SHARE),
        ),
        storage=KVS_ID,
    ),
    Route(
        "/v2/key-value-stores/{storeId}/rotate-url-signing-secret-key",
        methods(POST=(stores.rotate_signing_key, kvs.ROTATE_SIGNING_KEY)),
        storage=KVS_ID,
    ),
    Route(
        "/v2/datasets",
        methods(
            GET=(datasets.list_datasets, dataset_specs.LIST_DATASETS),
            POST=(datasets.create_dataset, dataset_specs.GET_OR_CREATE_DATASET),
        ),
    ),
    Route(
        "/v2/datasets/{datasetId}",
        methods(
            GET=(datasets.get_dataset, dataset_specs.GET_DATASET),
            PUT=(datasets.update_dataset, dataset_specs.UPDATE_DATASET),
            DELETE=(datasets.delete_dataset, dataset_specs.DELETE_DATASET),
        ),
        storage=DATASET_ID,
    ),
    Route(
        "/v2/datasets/{datasetId}/items",
        methods(
            GET=(datasets.get_items, dataset_specs.GET_ITEMS),
            POST=(datasets.push_items, dataset_specs.PUSH_ITEMS),
        ),
        record_methods=frozenset({"POST"}),
        storage=DATASET_ID,
    ),
    Route(
        "/v2/datasets/{datasetId}/statistics",
        methods(GET=(datasets.statistics, dataset_specs.GET_STATISTICS)),
        storage=DATASET_ID,
    ),
    Route(
        "/v2/request-queues",
        methods(
            GET=(queues.list_queues, queue_specs.LIST_QUEUES),
            POST=(queues.create_queue, queue_specs.GET_OR_CREATE_QUEUE),
        ),
    ),
    Route(
        "/v2/request-queues/{queueId}",
        methods(
            GET=(queues.get_queue, queue_specs.GET_QUEUE),
            PUT=(queues.update_queue, queue_specs.UPDATE_QUEUE),
            DELETE=(queues.delete_queue, queue_specs.DELETE_QUEUE),
        ),
        storage=QUEUE_ID,
    ),
    Route(
        "/v2/request-queues/{queueId}/requests",
        methods(
            GET=(queues.list_requests, queue_specs.LIST_REQUESTS),
            POST=(queues.add_request, queue_specs.ADD_REQUEST),
        ),
        record_methods=frozenset({"POST"}),
        storage=QUEUE_ID,
    ),
    # The literal segments `batch` and `unlock` beat {requestId} (a request id never is one: 15 characters).
    Route(
        "/v2/request-queues/{queueId}/requests/batch",
        methods(
            POST=(queues.add_requests, queue_specs.ADD_REQUESTS),
            DELETE=(queues.delete_requests, queue_specs.DELETE_REQUESTS),
        ),
        storage=QUEUE_ID,
    ),
    Route(
        "/v2/request-queues/{queueId}/requests/unlock",
        methods(POST=(queues.unlock_requests, queue_specs.UNLOCK_REQUESTS)),
        storage=QUEUE_ID,
    ),
    Route(
        "/v2/request-queues/{queueId}/requests/{requestId}",
        methods(
            GET=(queues.get_request, queue_specs.GET_REQUEST),
            PUT=(queues.update_request, queue_specs.UPDATE_REQUEST),
            DELETE=(queues.delete_request, queue_specs.DELETE_REQUEST),
        ),
        record=True,
        storage=QUEUE_ID,
    ),
    Route(
        "/v2/request-queues/{queueId}/requests/{requestId}/lock",
        methods(
            PUT=(queues.prolong_lock, queue_specs.PROLONG_LOCK),
            DELETE=(queues.delete_lock, queue_specs.DELETE_LOCK),
        ),
        storage=QUEUE_ID,
    ),
    Route(
        "/v2/request-queues/{queueId}/head",
        methods(GET=(queues.get_head, queue_specs.GET_HEAD)),
        storage=QUEUE_ID,
    ),
    Route(
        "/v2/request-queues/{queueId}/head/lock",
        methods(POST=(queues.lock_head, queue_specs.LOCK_HEAD)),
        storage=QUEUE_ID,
    ),
    *share_routes(
        "/v2/datasets/{datasetId}", ("datasetId", StorageKind.DATASET), shares.DATASETS, "dataset", "Dataset"
    ),
    *share_routes(
        "/v2/request-queues/{queueId}",
        ("queueId", StorageKind.REQUEST_QUEUE),
        shares.REQUEST_QUEUES,
        "request queue",
        "RequestQueue",
    ),
    Route("/v2/acts/{actorId}", methods(GET=(runs.get_actor, run_specs.GET_ACTOR))),
    Route(
        "/v2/acts/{actorId}/runs",
        methods(
            GET=(runs.list_actor_runs, run_specs.LIST_ACTOR_RUNS), POST=(runs.start_run, run_specs.START_RUN)
        ),
    ),
    Route(
        "/v2/acts/{actorId}/runs/last",
        methods(GET=(runs.get_run, run_specs.LAST_RUN), PUT=(runs.update_run, run_specs.UPDATE_LAST_RUN)),
    ),
    Route("/v2/acts/{actorId}/runs/last/abort", methods(POST=(runs.abort_run, run_specs.ABORT_LAST_RUN))),
    Route("/v2/acts/{actorId}/runs/last/charge", methods(POST=(runs.charge_run, run_specs.CHARGE_LAST_RUN))),
    Route("/v2/acts/{actorId}/runs/last/log", methods(GET=(runs.get_log, run_specs.LAST_RUN_LOG))),
    Route("/v2/actor-runs", methods(GET=(runs.list_runs, run_specs.LIST_RUNS))),
    Route(
        "/v2/actor-runs/{runId}",
        methods(
            GET=(runs.get_run, run_specs.GET_RUN),
            PUT=(runs.update_run, run_specs.UPDATE_RUN),
            DELETE=(runs.delete_run, run_specs.DELETE_RUN),
        ),
    ),
    Route("/v2/actor-runs/{runId}/abort", methods(POST=(runs.abort_run, run_specs.ABORT_RUN))),
    Route("/v2/actor-runs/{runId}/charge", methods(POST=(runs.charge_run, run_specs.CHARGE_RUN))),
    Route(
        "/v2/actor-runs/{runId}/log",
        methods(GET=(runs.get_log, run_specs.GET_LOG), POST=(runs.append_log, run_specs.APPEND_LOG)),
    ),
    Route("/v2/logs/{runId}", methods(GET=(runs.get_log, run_specs.GET_LOG_BY_ID))),
    Route("/v2/users/me", methods(GET=(users.me, user_specs.GET_ME))),
    Route("/v2/users/{userId}", methods(GET=(users.public, user_specs.GET_USER))),
    Route("/v2/openapi.json", methods(GET=(document.document, document.GET_OPENAPI))),
]
# A run's storages through the run (api/chained.py), then every /v2/acts/... path as /v2/actors/... too.
ROUTES += chained_routes(ROUTES)
ROUTES += actors_aliases(ROUTES)


class PageNotFound(NotFound):
    type = "page-not-found"


class _Node:
    """A place in the trie: literal children by their raw segment, at most one parameter child."""

    __slots__ = ("literals", "param", "param_name", "route")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.param_name = ""
        self.route: Route | None = None


def compile_routes(routes: list[Route]) -> _Node:
    """The table as a trie; a table that could not be dispatched unambiguously is refused here, at import."""
    root = _Node()
    top = root.literals[""] = _Node()  # the empty segment before a path's leading slash
    for route in routes:
        if not route.template.startswith("/"):
            raise ValueError(f"Route {route.template!r} must start with /")
        if route.storage is not None and route.storage[0] not in route.params:
            raise ValueError(f"Route {route.template!r} has no parameter {route.storage[0]!r}")
        if len(set(route.params)) != len(route.params):
            raise ValueError(f"Route {route.template!r} names a parameter twice")
        node = top
        for segment in route.template.split("/")[1:]:
            if (match := PARAM.match(segment)) is None:
                if "{" in segment or "}" in segment or "%" in segment or not segment:
                    raise ValueError(f"Route {route.template!r}: bad segment {segment!r}")
                node = node.literals.setdefault(segment, _Node())
                continue
            if node.param is None:
                node.param, node.param_name = _Node(), match[1]
            elif node.param_name != match[1]:
                # One position, one name: otherwise a handler could not know which name to read.
                raise ValueError(
                    f"Route {route.template!r}: {{{match[1]}}} is {{{node.param_name}}} elsewhere"
                )
            node = node.param
        if node.route is not None:
            raise ValueError(f"Route {route.template!r} is in the table twice")
        node.route = route
    return root


TRIE = compile_routes(ROUTES)


def _segment(raw: str) -> str:
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The request path is not valid UTF-8 once percent-decoded.") from exc


def resolve(raw_path: bytes) -> tuple[Route, dict[str, str]]:
    """The route a raw path names, with its path parameters (percent-decoded) by their template names.

    A literal segment is matched as sent (undecoded) and beats a parameter at the same place, for good: the
    walk never goes back to try the parameter, so `/v2/users/me` is the caller, never a user named `me`.
    """
    try:
        path = raw_path.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The request path must be ASCII (percent-encode other characters).") from exc
    parts = path.split("/")
    # parts[0] is the empty string before the leading slash; one trailing slash is forgiven.
    if len(parts) > 2 and parts[-1] == "":
        parts.pop()
    node = TRIE
    params: dict[str, str] = {}
    for raw in parts:
        child = node.literals.get(raw)
        if child is None:
            child = node.param
            if child is None:
                raise PageNotFound(f"There is no API endpoint at {path[:200]}.")
            params[node.param_name] = raw
        node = child
    if node.route is None:
        raise PageNotFound(f"There is no API endpoint at {path[:200]}.")
    # Decoded once the route is known: a path no route has is not found, however its segments are encoded.
    if "%" in path:
        for name, raw in params.items():
            if "%" in raw:
                params[name] = _segment(raw)
    return node.route, params
