"""A run's storages reached through the run: routes made from the storages' own.

For every route under one storage (`/v2/key-value-stores/{storeId}...`, `/v2/datasets/{datasetId}...`,
`/v2/request-queues/{queueId}...`) there are two more, under `/v2/actor-runs/{runId}/key-value-store...` and
`/v2/acts/{actorId}/runs/last/key-value-store...` (and `/dataset`, `/request-queue`): each finds the run,
puts its default storage's id into the call's parameters under the storage route's own name, and calls the
same handler. So they take the same methods, parameters and bodies, answer the same, and can never drift from
the storages' routes; the last-run variants also take the `status` and `origin` filters of the last run.

They are counted under the user's rate limit rather than the storage's: the storage is known only once the
run is found.

The official clients (Python and JavaScript) call Actors `/v2/actors/...`, the reference `/v2/acts/...`;
both are served, the former made here from the latter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from satchel.api.http import Call
from satchel.api.runs import run_for
from satchel.api.spec.runs import LAST_RUN_FILTERS
from satchel.storage import StorageKind

if TYPE_CHECKING:
    from satchel.api.routing import Endpoint, Route

Handler = Callable[[Call], Awaitable[Response]]

# Per kind: the storages' collection path, the segment under a run, and the run's field with its id.
KINDS = {
    StorageKind.KEY_VALUE_STORE: ("key-value-stores", "key-value-store", "default_key_value_store_id"),
    StorageKind.DATASET: ("datasets", "dataset", "default_dataset_id"),
    StorageKind.REQUEST_QUEUE: ("request-queues", "request-queue", "default_request_queue_id"),
}
# The two ways to a run, and what their operations are called.
PARENTS = (
    ("/v2/actor-runs/{runId}", "OfRun", "of a run"),
    ("/v2/acts/{actorId}/runs/last", "OfLastRun", "of an Actor's last run"),
)


def chained_routes(routes: list[Route]) -> list[Route]:
    """The run and last-run variants of every route under one storage, in the table's order."""
    made: list[Route] = []
    for parent, suffix, whose in PARENTS:
        for route in routes:
            if route.storage is None:
                continue
            param, kind = route.storage
            collection, segment, field = KINDS[kind]
            prefix = f"/v2/{collection}/{{{param}}}"
            if route.template != prefix and not route.template.startswith(prefix + "/"):
                continue
            template = f"{parent}/{segment}{route.template[len(prefix) :]}"
            endpoints = {
                method: _chain(endpoint, param, field, suffix, whose, last=suffix == "OfLastRun")
                for method, endpoint in route.methods.items()
            }
            # The storage parameter is no longer in the path, so requests count under the user's limit.
            made.append(
                dataclasses.replace(
                    route,
                    template=template,
                    methods=endpoints,
                    storage=None,
                    derived_from=f"{parent}/{segment}",
                )
            )
    return made


def _chain(endpoint: Endpoint, param: str, field: str, suffix: str, whose: str, *, last: bool) -> Endpoint:
    handler = endpoint.handler

    async def through_run(call: Call) -> Response:
        run = await run_for(call)
        call.params[param] = getattr(run, field)
        return await handler(call)

    spec: dict[str, Any] = {
        **endpoint.spec,
        "operationId": endpoint.spec["operationId"] + suffix,
        "summary": f"{endpoint.spec['summary']} (the default storage {whose})",
    }
    if last:
        spec["parameters"] = [*endpoint.spec.get("parameters", []), *LAST_RUN_FILTERS]
    return dataclasses.replace(endpoint, handler=through_run, spec=spec)


def actors_aliases(routes: list[Route]) -> list[Route]:
    """`/v2/actors/...` for each `/v2/acts/...` route: the same endpoints, as the official clients say."""
    made: list[Route] = []
    for route in routes:
        if route.template.startswith("/v2/acts/"):
            endpoints = {
                method: dataclasses.replace(
                    endpoint,
                    spec={**endpoint.spec, "operationId": endpoint.spec["operationId"] + "ViaActors"},
                )
                for method, endpoint in route.methods.items()
            }
            template = "/v2/actors/" + route.template.removeprefix("/v2/acts/")
            made.append(
                dataclasses.replace(
                    route,
                    template=template,
                    methods=endpoints,
                    derived_from=route.derived_from or route.template,
                )
            )
    return made
