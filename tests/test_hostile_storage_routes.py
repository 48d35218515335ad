"""Every dataset, request-queue and run route is sent hostile input by one of the storage tables
(tests/test_hostile_storage_*.py), checked against the route table (satchel/api/routing.py ROUTES)."""

from __future__ import annotations

import re

from satchel.api.routing import ROUTES
from tests import test_hostile_storage_bodies, test_hostile_storage_queries, test_hostile_storage_refs
from tests.harness.hostile import Case

CASES = [
    *test_hostile_storage_bodies.TABLE.cases,
    *test_hostile_storage_queries.TABLE.cases,
    *test_hostile_storage_refs.TABLE.cases,
]


def _path(c: Case) -> str:
    """The path a case sends, after /v2, without its query."""
    target = c.target if c.raw is None else c.raw.decode("latin-1").split(" ")[1].removeprefix("/v2")
    return target.split("?")[0]


def test_every_storage_route_is_in_the_table() -> None:
    """Each method of each dataset, request-queue and run route is sent hostile input. The routes below a run
    (api/chained.py) call their storage route's own handler: the few in the table stand for the rest."""
    sent = {(c.method, _path(c)) for c in CASES}
    missing = []
    for route in ROUTES:
        template = route.template.removeprefix("/v2")
        if not template.startswith(("/datasets", "/request-queues", "/actor-runs", "/acts")):
            continue
        if template.startswith(("/actor-runs/{runId}/", "/acts/{actorId}/runs/last/")):
            continue
        pattern = re.compile("^" + re.sub(r"\\\{[A-Za-z]+\\\}", "[^/]+", re.escape(template)) + "$")
        missing += [f"{m} {route.template}" for m in route.methods if not any(
            method == m and pattern.match(path) for method, path in sent)]  # fmt: skip
    assert missing == []
