"""Sharing endpoints, the same for every kind of storage: `/shares` and `/shares/{username}` below a storage.

Which storage kind a route shares comes from the Stores service it is built with, and which path parameter
names the storage; everything else (owner only, READ or WRITE, revocation on every node) is service/stores.py.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from satchel.api import wire
from satchel.api.http import Call, read_json_object
from satchel.errors import InvalidRequest
from satchel.service.services import Services
from satchel.service.stores import Stores


class Sharing:
    def __init__(self, pick: Callable[[Services], Stores], param: str) -> None:
        self.pick = pick
        self.param = param

    async def list(self, call: Call) -> Response:
        _, grants = await self.pick(call.services).shares(call.caller, call.params[self.param])
        items = [wire.grant(g) for g in grants]
        return wire.json_response({"total": len(items), "count": len(items), "items": items})

    async def put(self, call: Call) -> Response:
        body = await read_json_object(call.request)
        access = body.get("access")
        if not isinstance(access, str) or access.upper() not in ("READ", "WRITE"):
            raise InvalidRequest("Field `access` must be READ or WRITE.", type="invalid-value")
        stores = self.pick(call.services)
        grant = await stores.share(
            call.caller, call.params[self.param], call.params["username"], access.lower()
        )
        assert grant is not None
        return wire.json_response(wire.grant(grant))

    async def delete(self, call: Call) -> Response:
        stores = self.pick(call.services)
        await stores.share(call.caller, call.params[self.param], call.params["username"], None)
        return Response(status_code=204)


KEY_VALUE_STORES = Sharing(lambda services: services.stores, "storeId")
DATASETS = Sharing(lambda services: services.datasets.stores, "datasetId")
REQUEST_QUEUES = Sharing(lambda services: services.queues.stores, "queueId")
